"""Reference-versus-recent drift and data-quality detectors of prediction-log features and scores."""
