"""Zabbix front end: the JSON document of every metric (``document``), the trapper sender with
its spool (``sender``), the template generator (``template``), the API deployment (``deploy``)
and the ``postfix_queue_zabbix`` command (``cli``)."""
