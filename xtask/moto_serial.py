"""Runs the moto server with one request at a time, and with transactions that cost what they touch.

moto's own `moto_server` serves requests on many threads and applies conditional writes and UpdateItem
ADD without a lock, so concurrent requests can both pass a condition or lose an increment. DynamoDB
applies each request atomically; serving one request at a time restores that guarantee, so tests of
"exactly one winner" and atomic counters measure our code, not the emulator's races.

moto's TransactWriteItems keeps a deep copy of every table it touches, to put back if the transaction
is cancelled: each transaction costs time and memory in proportion to the whole table, so a workload of
N messages costs N² (1,000 ingested messages took minutes and gigabytes). Here a transaction instead
remembers only the items it names and, if moto cancels it, puts exactly those back: the same outcome,
at the cost of the transaction's own items. Requests are served one at a time, so nothing else sees the
table in between.
"""

import copy
import os
import sys

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

_transact_write_items = DynamoDBBackend.transact_write_items


def _item_key(table, op_type, op):
    if op_type == "Put":
        attrs = op.get("Item", {})
        key = {table.hash_key_attr: attrs.get(table.hash_key_attr)}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = attrs.get(table.range_key_attr)
        return key
    return op.get("Key")


def _snapshot(backend, transact_items):
    """(table name, key, the item's attributes before the transaction or None) for each item named."""
    before = []
    for entry in transact_items:
        for op_type, op in entry.items():
            table = backend.tables.get(op.get("TableName"))
            key = table and _item_key(table, op_type, op)
            if not key or any(value is None for value in key.values()):
                continue
            try:
                current = backend.get_item(op["TableName"], key)
            except Exception:
                continue  # an invalid key: moto rejects the transaction before writing anything
            attrs = copy.deepcopy(current.to_json()["Attributes"]) if current else None
            before.append((op["TableName"], key, attrs))
    return before


def _restore(backend, before):
    for table_name, key, attrs in before:
        if attrs is None:
            if backend.get_item(table_name, key) is not None:
                backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, attrs)


def transact_write_items(self, transact_items):
    before = _snapshot(self, transact_items)
    # moto's own snapshot becomes the live table (its "rollback" a no-op); ours does the rolling back.
    own_deepcopy = Table.__dict__.get("__deepcopy__")
    Table.__deepcopy__ = lambda table, memo: table
    try:
        return _transact_write_items(self, transact_items)
    except Exception as cancelled:
        try:
            _restore(self, before)
        except Exception as failed:
            raise RuntimeError(f"rolling back a cancelled transaction failed: {failed!r}") from cancelled
        raise
    finally:
        if own_deepcopy is None:
            del Table.__deepcopy__
        else:
            Table.__deepcopy__ = own_deepcopy


DynamoDBBackend.transact_write_items = transact_write_items

host, port = sys.argv[1], int(sys.argv[2])
os.environ.setdefault("MOTO_PORT", str(port))
app = DomainDispatcherApplication(create_backend_app)
run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)
