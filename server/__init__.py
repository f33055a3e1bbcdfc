"""`avsearch serve`: one long-lived process that keeps an index and its model warm and answers
over HTTP (a JSON API, a web page, indexing jobs).

A thin layer over `avsearch.Index`, like the CLI: it holds no retrieval logic of its own.
This package lives beside cli/ (installed as avsearch.server) because it is an outer shell over
the core, not part of it: the core never imports it. Importing the package stays light; the web
stack (FastAPI, uvicorn) is imported by `app` and `runner` only, so the CLI's client path
(`discovery`, `client`) costs nothing extra.
"""
