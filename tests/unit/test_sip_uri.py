import pytest

from firmware.sip.uri import header_value, host_port, parse_party, retry_after_seconds


@pytest.mark.parametrize(("text", "name", "number", "host"), [
    ('"Anna Andersson" <sip:1001@pbx.example.se>', "Anna Andersson", "1001", "pbx.example.se"),
    ("<sip:1002@127.0.0.1:5060;transport=tcp>", "", "1002", "127.0.0.1:5060"),
    ("sip:1003@10.0.0.1", "", "1003", "10.0.0.1"),
    ('Bertil <sip:1004@h>;tag=x', "Bertil", "1004", "h"),
    ('"Q \\"uote\\"" <sip:5@h>', 'Q "uote"', "5", "h"),
    ("garbage", "", "", ""),
    ("", "", "", ""),
])
def test_parse_party(text: str, name: str, number: str, host: str) -> None:
    party = parse_party(text)
    assert (party.name, party.number, party.host) == (name, number, host)


def test_retry_after() -> None:
    msg = "SIP/2.0 503 Maintenance\r\nVia: x\r\nretry-after: 120 (back soon)\r\n\r\n"
    assert header_value(msg, "Retry-After") == "120 (back soon)"
    assert retry_after_seconds(msg) == 120
    assert retry_after_seconds("SIP/2.0 503 X\r\n\r\n") is None
    assert retry_after_seconds("SIP/2.0 503 X\r\nRetry-After: soon\r\n\r\n") is None


def test_host_port() -> None:
    assert host_port("sip:pbx.example.se:5080;transport=tcp") == "pbx.example.se:5080"
    assert host_port("127.0.0.1:5060") == "127.0.0.1:5060"
