"""A local PBX (Kamailio) and the process/port/polling helpers around it.

Used by the simulated office and by the end-to-end tests: `kamailio.Kamailio`,
`ports.free_port`, `waiting.wait_until`, `process.ManagedProcess`,
`sipprobe.sip_request`.
"""
