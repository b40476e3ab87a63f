"""MLflow's registry webhooks (MLflow 3.3+): the events, who may be called, the queue's worker, the API."""
