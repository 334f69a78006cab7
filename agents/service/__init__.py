"""The running worker: wiring, the Faust app, the batch handlers and the HTTP server."""
