"""Domain services: the only code that changes chat state.

Socket event handlers and REST views both call these synchronous functions
(handlers through ``database_sync_to_async``).  Each one validates, writes in
a transaction and returns what happened; announcing it to sockets is the
caller's job, done only after the transaction has committed.
"""
