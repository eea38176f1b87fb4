"""The web interface: server-rendered pages over the same library calls the CLI uses.

`listen` and `auth` are light (the CLI checks addresses and passwords with
them); `app`, `server`, `forms` and `pages` import Starlette, uvicorn and
Jinja2, and are imported only when something is served.
"""
