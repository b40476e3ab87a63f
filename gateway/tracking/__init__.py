"""The tracking API: experiments, runs, params, metrics, tags, datasets, logged models, run search."""
