"""LiteLLM compatibility at the edge: its proxy config (YAML) turned into our TOML.

`importer` maps what has an equivalent and reports what is left out; `toml_writer` writes the
result.  It lives apart because it is a one-off conversion the running gateway never needs:
nothing here is imported on the request path.
"""
