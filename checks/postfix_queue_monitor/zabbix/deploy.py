"""Import or update the templates, create or update the host, link the template — through the
Zabbix API with pyzabbix. Running it twice changes nothing the second time.

The templates are those of this installed version, built from the registry in memory and
imported as JSON (the committed YAML under zabbix_templates/ is the same export; a unit test
keeps them equal), or the ``*.yaml`` files of ``--templates-dir``.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import MonitorError
from . import template


def import_rules(api_version: str) -> dict[str, Any]:
    """configuration.import rules for a server of ``api_version`` ("6.0.14", "7.0.9").

    6.2 split template groups from host groups: 6.0 knows only the rule ``groups``, 6.2 and
    later refuse it ("unexpected parameter") and want ``template_groups``. The export itself
    stays 6.0 (``groups:``); newer servers convert it on import."""
    try:
        major, minor = (int(p) for p in api_version.split(".")[:2])
    except ValueError:
        raise MonitorError(f"unexpected Zabbix API version {api_version!r}") from None
    groups = "template_groups" if (major, minor) >= (6, 2) else "groups"
    return {
        groups: {"createMissing": True},
        "templates": {"createMissing": True, "updateExisting": True},
        "templateLinkage": {"createMissing": True},
        **{name: {"createMissing": True, "updateExisting": True, "deleteMissing": True}
           for name in ("items", "triggers", "graphs", "discoveryRules", "templateDashboards",
                        "valueMaps")},
    }


@dataclass
class Result:
    actions: list[str] = field(default_factory=list)
    hostid: str = ""
    templateid: str = ""


def sources(templates_dir: str | None) -> list[tuple[str, str, str]]:
    """(label, format, text) of every template export to import."""
    if templates_dir is None:
        return [(template.FILES[k], "json", json.dumps(template.build(k)))
                for k in template.KINDS]
    files = sorted(glob.glob(os.path.join(templates_dir, "*.yaml"))
                   + glob.glob(os.path.join(templates_dir, "*.yml")))
    if not files:
        raise MonitorError(f"no *.yaml template in {templates_dir}")
    out = []
    for path in files:
        try:
            with open(path, encoding="utf-8") as fh:
                out.append((os.path.basename(path), "yaml", fh.read()))
        except OSError as exc:
            raise MonitorError(f"cannot read {path}: {exc.strerror}") from None
    return out


def connect(url: str, user: str | None, password: str | None, token: str | None,
            timeout: float = 120):
    from pyzabbix import ZabbixAPI, ZabbixAPIException  # noqa: PLC0415
    from requests import RequestException  # noqa: PLC0415

    api = ZabbixAPI(url, timeout=timeout)
    try:
        if token:
            api.login(api_token=token)
            api.host.get(limit=1)   # a bad token fails here, not later
        else:
            api.login(user or "", password or "")
    except ZabbixAPIException as exc:
        raise MonitorError(f"Zabbix API at {api.url} refused the login: {exc}") from None
    except RequestException as exc:
        raise MonitorError(f"cannot reach the Zabbix API at {api.url}: "
                           f"{root_cause(exc)[:200]}") from None
    return api


def root_cause(exc: BaseException) -> str:
    """The innermost error under requests' and urllib3's wrappers (MaxRetryError.reason, then
    the chained socket error), e.g. "Connection refused": their own texts repeat the URL and
    a connection object before it, so one line cut to length lost the cause."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in exc.args if isinstance(a, BaseException)), None)
        inner = inner or exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    if isinstance(exc, OSError) and isinstance(exc.strerror, str) and exc.strerror:
        return exc.strerror
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _group_ids(api, names: list[str], result: Result) -> list[dict[str, str]]:
    ids = []
    for name in names:
        found = api.hostgroup.get(filter={"name": [name]}, output=["groupid"])
        if found:
            ids.append({"groupid": found[0]["groupid"]})
        else:
            created = api.hostgroup.create(name=name)
            ids.append({"groupid": created["groupids"][0]})
            result.actions.append(f"created host group {name!r}")
    return ids


def _interface(address: str) -> dict[str, Any]:
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "10050")
    is_ip = all(part.isdigit() for part in host.split(".")) and host.count(".") == 3
    return {"type": 1, "main": 1, "useip": 1 if is_ip else 0, "ip": host if is_ip else "",
            "dns": "" if is_ip else host, "port": port or "10050"}


DEFAULT_GROUP = "Postfix servers"


def deploy(api, host: str, groups: list[str] | None, kind: str = "trapper",
           templates_dir: str | None = None, agent_address: str | None = None,
           macros: dict[str, str] | None = None) -> Result:
    """Import the templates, then create or update ``host`` with the ``kind`` template.

    ``groups``: a new host goes into these (default: 'Postfix servers'); an existing one is
    added to them (None: its groups are left alone)."""
    from pyzabbix import ZabbixAPIException  # noqa: PLC0415

    result = Result()
    try:
        rules = import_rules(str(api.api_version()))
        for label, fmt, text in sources(templates_dir):
            api.configuration["import"](format=fmt, source=text, rules=rules)
            result.actions.append(f"imported {label}")
        name = template.TEMPLATE_NAMES[kind]
        found = api.template.get(filter={"host": [name]}, output=["templateid"])
        if not found:
            raise MonitorError(f"template {name!r} is not in Zabbix after the import")
        result.templateid = found[0]["templateid"]
        existing = api.host.get(filter={"host": [host]}, output=["hostid", "status"],
                                selectParentTemplates=["templateid"],
                                selectInterfaces=["interfaceid", "type", "ip", "dns", "port"],
                                selectGroups=["groupid"], selectMacros=["hostmacroid", "macro",
                                                                         "value"])
        group_ids = _group_ids(api, groups or ([] if existing else [DEFAULT_GROUP]), result)
        if not existing:
            params: dict[str, Any] = {"host": host, "groups": group_ids,
                                      "templates": [{"templateid": result.templateid}]}
            if kind == "agent":
                params["interfaces"] = [_interface(agent_address or "127.0.0.1:10050")]
            if macros:
                params["macros"] = [{"macro": k, "value": v} for k, v in macros.items()]
            result.hostid = api.host.create(**params)["hostids"][0]
            result.actions.append(f"created host {host!r} linked to {name!r}")
        else:
            h = existing[0]
            result.hostid = h["hostid"]
            have_groups = {g["groupid"] for g in h["groups"]}
            add_groups = [g for g in group_ids if g["groupid"] not in have_groups]
            linked = {t["templateid"] for t in h["parentTemplates"]}
            update: dict[str, Any] = {}
            if add_groups:
                update["groups"] = [{"groupid": g} for g in sorted(have_groups)] + add_groups
                result.actions.append(f"added host {host!r} to {len(add_groups)} group(s)")
            if result.templateid not in linked:
                update["templates"] = [{"templateid": t} for t in sorted(linked)] + [
                    {"templateid": result.templateid}]
                result.actions.append(f"linked {name!r} to host {host!r}")
            if kind == "agent" and not any(i["type"] == "1" for i in h["interfaces"]):
                api.hostinterface.create(hostid=h["hostid"],
                                         **_interface(agent_address or "127.0.0.1:10050"))
                result.actions.append(f"added an agent interface to host {host!r}")
            if macros:
                have = {m["macro"]: m for m in h["macros"]}
                merged = [{"macro": m["macro"], "value": m["value"]} for m in h["macros"]
                          if m["macro"] not in macros]
                merged += [{"macro": k, "value": v} for k, v in macros.items()]
                if any(have.get(k, {}).get("value") != v for k, v in macros.items()):
                    update["macros"] = merged
                    result.actions.append(f"set {len(macros)} macro(s) on host {host!r}")
            if update:
                api.host.update(hostid=h["hostid"], **update)
            else:
                result.actions.append(f"host {host!r} already up to date")
    except ZabbixAPIException as exc:
        raise MonitorError(f"Zabbix API error: {str(exc).splitlines()[0][:300]}") from None
    return result
