"""`artifact-gateway import-mlflow`: copy an MLflow server's metadata (its SQL database or an old
./mlruns file store) into the gateway's store, keeping every id; `artifact-gateway gc` lives in gateway/gc."""
