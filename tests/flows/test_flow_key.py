"""Flow keys and the port rule that names the server when no handshake was captured."""

from __future__ import annotations

from analyzer.flows.key import flow_key, port_says_source_is_server, reverse_key


def test_reverse_key_names_the_other_direction_of_the_same_conversation() -> None:
    key = flow_key("192.0.2.1", 40000, "198.51.100.2", 25)
    assert reverse_key(key) == ("198.51.100.2", 25, "192.0.2.1", 40000)
    assert reverse_key(reverse_key(key)) == key


def test_a_mail_port_is_the_server_whichever_way_the_segment_goes() -> None:
    assert port_says_source_is_server(25, 51000) is True
    assert port_says_source_is_server(51000, 587) is False
    assert port_says_source_is_server(2525, 80) is True  # mail port beats the lower port
    assert port_says_source_is_server(1025, 443) is True


def test_without_a_mail_port_the_lower_port_is_the_server() -> None:
    assert port_says_source_is_server(8080, 50000) is True
    assert port_says_source_is_server(50000, 8080) is False
    assert port_says_source_is_server(25, 587) is True  # both mail ports: lower wins


def test_equal_ports_make_the_sender_the_client() -> None:
    assert port_says_source_is_server(40000, 40000) is False
