"""The scoring service: registered models scored over HTTP, and batch jobs on data roots.

Built with FastAPI (OpenAPI docs at ``/docs``) and served by uvicorn through
``hepclf serve``. Nothing is imported here, so that ``hepclf --help`` stays fast.
"""
