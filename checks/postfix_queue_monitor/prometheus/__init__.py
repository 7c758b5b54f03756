"""The Prometheus front end: ``postfix_queue_prometheus textfile|serve``."""
