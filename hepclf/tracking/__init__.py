"""MLflow integration: the hepclf pyfunc flavor, run logging and the model registry."""
