"""One module per Nagios check: its Resource, Contexts, Summary and ``main(argv=None)``."""
