"""Model-from-code entry point: MLflow loads the hepclf pyfunc from this file, not a pickle."""

from mlflow.models import set_model

from hepclf.tracking.pyfunc import HepclfPyfunc

set_model(HepclfPyfunc())
