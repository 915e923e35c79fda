"""HTTP routes: thin adapters that turn requests into Calls for the pipeline."""
