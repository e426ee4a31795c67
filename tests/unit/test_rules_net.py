"""module_utils/esia_onboard/net.py, accounts.py and paths.py."""

import ipaddress

import pytest

from module_utils.esia_onboard import accounts, net, paths


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        (" 192.0.2.1", None),
        ("192.0.2.1\n", None),
        ("192.0.2", None),
        ("fe80::1%eth0", None),
        ("192.0.2.0/24", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_ip(value, parsed):
    result = net.parse_ip(value)
    assert (str(result) if result else None) == parsed


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:192.0.2.1", "IPv4-mapped"),
        ("127.0.0.1", None),
        ("203.0.113.10", None),
        ("2001:db8::1", None),
    ],
)
def test_never_a_target(address, reason):
    found = net.never_a_target(ipaddress.ip_address(address))
    assert (reason in found) if reason else found is None


@pytest.mark.parametrize(
    ("port", "ok"),
    [
        (53, True),
        ("53", True),
        (65535, True),
        (0, False),
        (65536, False),
        ("53a", False),
        (True, False),
        ("\uff15\uff13", False),
        (-1, False),
        (5.3, False),
        ("", False),
    ],
)
def test_port(port, ok):
    assert net.port_valid(port) is ok
    assert (net.port_rule(port, {}, setting="p") == []) is ok


@pytest.mark.parametrize(
    ("value", "endpoint"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("192.0.2.53:5353", ("192.0.2.53", 5353)),
        ("[2001:db8::53]:53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[192.0.2.53]:53", None),
        ("2001:db8::53]:53", None),
        ("192.0.2.53:0", None),
        ("dns.example:53", None),
        ("192.0.2.53:53 ", None),
        (53, None),
    ],
)
def test_parse_endpoint(value, endpoint):
    result = net.parse_endpoint(value)
    assert ((str(result[0]), result[1]) if result else None) == endpoint


@pytest.mark.parametrize(
    ("text", "split"),
    [
        ("127.0.0.1:15353", ("127.0.0.1", "15353")),
        (" 192.0.2.53 ", ("192.0.2.53", "53")),
        ("[::1]:5353", ("::1", "5353")),
        ("[::1]", ("::1", "53")),
        ("::1", ("::1", "53")),
        ("dns.example", ("dns.example", "53")),
    ],
)
def test_split_endpoint(text, split):
    assert net.split_endpoint(text) == split


def test_format_endpoint():
    assert net.format_endpoint("2001:db8::1", 53) == "[2001:db8::1]:53"
    assert net.format_endpoint("192.0.2.1", 5353) == "192.0.2.1:5353"


def test_address_rules():
    assert net.ipv4_target_rule("203.0.113.10", {}) == []
    assert "IPv4" in net.ipv4_target_rule("2001:db8::1", {})[0]
    assert "unspecified" in net.ipv4_target_rule("0.0.0.0", {})[0]
    assert net.ipv6_target_or_empty_rule("", {}) == []
    assert net.ipv6_target_or_empty_rule("2001:db8::10", {}) == []
    assert net.ipv6_target_or_empty_rule("203.0.113.10", {})[0].startswith("portal_domain_address6:")
    assert net.ip_target_rule("2001:db8::53", {}) == []
    assert "host name" in net.ip_target_rule("ns1.miac77.ru", {})[0]
    assert "multicast" in net.ip_target_rule("224.0.0.1", {})[0]


def test_resolvers_rule():
    assert net.resolvers_rule(["192.0.2.53:53", "[2001:db8::53]:53", "2001:db8::54"], {}) == []
    found = net.resolvers_rule(["x:53", "0.0.0.0:53"], {}, setting="portal_domain_fallback_resolvers")
    assert found[0].startswith("portal_domain_fallback_resolvers[0]:")
    assert "never a resolver" in found[1]


def test_ntp_sources_rule():
    assert net.ntp_sources_rule(["ntp1.miac77.ru", "192.0.2.123", "2.debian.pool.ntp.org", "ntp"], {}) == []
    found = net.ntp_sources_rule(["ntp .x", "0.0.0.0", "1.2.3", 5], {})
    assert [p.split(":")[0] for p in found] == [f"portal_base_ntp_servers[{i}]" for i in range(4)]


@pytest.mark.parametrize(
    ("user", "ok"),
    [
        ("esia-portal", True),
        ("portal77", True),
        ("root", False),
        ("www-data", False),
        ("nobody", False),
        ("nginx", False),
        ("Esia", False),
        ("1abc", False),
        ("", False),
        (5, False),
    ],
)
def test_service_user(user, ok):
    assert (accounts.service_user_rule(user, {}) == []) is ok


@pytest.mark.parametrize(
    ("group", "ok"), [("esia-portal", True), ("root", False), ("sudo", False), ("users", False), ("bad group", False)]
)
def test_service_group(group, ok):
    assert (accounts.service_group_rule(group, {}) == []) is ok


def test_not_connecting_user():
    assert accounts.not_connecting_user_cross({"portal_service_user": "esia-portal", "ansible_user": "ansible"}) == []
    for key in ("ansible_user", "remote_user", "ansible_ssh_user"):
        found = accounts.not_connecting_user_cross({"portal_service_user": "deploy", key: "deploy"})
        assert found and key in found[0]
    assert accounts.not_connecting_user_cross({"portal_service_user": "bad name", "ansible_user": "bad name"}) == []


PASSWD = """root:x:0:0:root:/root:/bin/bash
esia-portal:x:998:998::/var/lib/esia-portal:/usr/sbin/nologin
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
ivan:x:1000:1000:Ivan:/home/ivan:/bin/bash
toor:x:0:0::/root:/bin/bash
broken line
"""


@pytest.mark.parametrize(
    ("user", "home", "fragment"),
    [
        ("esia-portal", "/var/lib/esia-portal", None),
        ("new-account", "/var/lib/x", None),
        ("esia-portal", "/srv/other", "did not create"),
        ("www-data", "/var/lib/esia-portal", "did not create"),
        ("ivan", "/home/ivan", "login account"),
        ("toor", "/root", "uid 0"),
    ],
)
def test_host_account_problems(user, home, fragment):
    for passwd in (
        PASSWD,
        {
            name: ["x", uid, gid, "", home_dir, shell]
            for name, _x, uid, gid, _g, home_dir, shell in (line.split(":") for line in PASSWD.splitlines()[:5])
        },
    ):
        found = accounts.host_account_problems(user, home, passwd)
        assert (fragment in found[0]) if fragment else found == []


def test_host_account_problems_without_data():
    assert accounts.host_account_problems("esia-portal", "/x", None) == []
    assert accounts.parse_passwd("broken\n") == {}


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/var/lib/esia-portal", None),
        ("/srv/esia-portal", None),
        ("/etc/esia-portal", None),
        ("var/lib/x", "absolute"),
        ("/var/lib/../etc", "'..'"),
        ("/var/./lib", "'..'"),
        ("/var/lib/x/", "trailing"),
        ("/var/lib/esia portal", "no spaces"),
        ("/var/lib/x\n", "no spaces"),
        ("//var", "no spaces"),
        (5, "absolute"),
    ],
)
def test_path_problem(path, fragment):
    found = paths.path_problem(path)
    assert (fragment in found) if fragment else found is None
    assert (paths.absolute_path_rule(path, {}, setting="p") == []) is (fragment is None)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/var/lib/esia-portal", None),
        ("/", "directory of the system"),
        ("/etc", "directory of the system"),
        ("/usr", "directory of the system"),
        ("/var", "directory of the system"),
        ("/var/lib", "directory of the system"),
        ("/home", "directory of the system"),
        ("/root", "directory of the system"),
        ("/bin", "directory of the system"),
        ("/home/ivan", "person's home"),
        ("/tmp/x", "not kept"),
        ("/proc/1", "not kept"),
        ("/run/esia", "not kept"),
        ("relative", "absolute"),
    ],
)
def test_dedicated_dir(path, fragment):
    found = paths.dedicated_dir_problem(path)
    assert (fragment in found) if fragment else found is None
    rule = paths.dedicated_dir_rule(path, {})
    assert (rule == []) is (fragment is None)
    assert all(p.startswith("portal_service_home:") for p in rule)
