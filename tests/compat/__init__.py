"""The gateway side by side with a stock `mlflow server`: the same requests, the same answers."""
