"""Runs the moto server with one request at a time.

moto's own `moto_server` serves requests on many threads and applies conditional writes and UpdateItem
ADD without a lock, so concurrent requests can both pass a condition or lose an increment. DynamoDB
applies each request atomically; serving one request at a time restores that guarantee, so tests of
"exactly one winner" and atomic counters measure our code, not the emulator's races.
"""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
