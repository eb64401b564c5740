"""What both Flyte generations' connectors share: one implementation, two thin adapters.

flytekit 1.x's connector (plugin/flyte/) and Flyte 2's (plugin/flyte2/) differ only in how a task arrives (their
TaskTemplate, literals or Python values) and how an answer leaves (their Resource and protobuf messages). Everything
between is here, importing neither flytekit nor flyte: the resource meta as JSON (`meta`), create / get / delete and
the reads of logs and metrics (`core`), what a meta handed back is believed (`trust`), the plugins the connectors use
and what keeps a config from serving (`shared`), and a served connector kept to loopback (`loopback`).
"""
