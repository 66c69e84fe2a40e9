"""Delighted's REST API (`/compat/delighted/v1/`), for the SDKs and integrations that
Delighted's shutdown left without a service: set the SDK's base URL, keep the code.

Its conventions are kept where its clients rely on them (docs/delighted.md): HTTP Basic
with the key as the user name, every path also with `.json`, ids as strings, times as Unix
seconds, Delighted's error bodies, `Link` paging on people and page numbers elsewhere."""
