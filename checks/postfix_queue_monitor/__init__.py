"""Postfix mail-queue monitoring: Nagios/Icinga/NRPE checks and a Zabbix sender."""

__version__ = "0.2.0"
