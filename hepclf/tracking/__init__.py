"""MLflow integration: the hepclf pyfunc flavor, run logging, the model registry, and the
``mlflow server`` command line of a shared tracking server (:mod:`.server`)."""
