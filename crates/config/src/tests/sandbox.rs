//! The `sandbox` section: sizes, limits and allowed hosts.

use super::*;

#[test]
fn memory_limit_accepts_binary_and_decimal_units_and_plain_bytes() {
    for (written, bytes) in [
        ("32MiB", 32u64 << 20),
        ("512 MiB", 512 << 20),
        ("1GiB", 1 << 30),
        ("64MB", 64_000_000),
        ("2097152", 2 << 20),
    ] {
        let c = single(&format!(
            "connectors:\n  - id: grafana\n    sandbox:\n      memory_limit: {written}\n"
        ));
        assert_eq!(c.sandbox.memory_limit, bytes, "memory_limit: {written}");
    }
}

#[test]
fn bad_allowed_hosts_rule_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts:",
            "    - https://ok.example.com",
            "    - ftp://files.example.com",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(&message, "`ftp://files.example.com` is not a host rule");
    assert_contains(&message, "the scheme must be http, https or tcp");
}

#[test]
fn allowed_hosts_that_is_not_a_list_of_strings_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts: example.com",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(
        &message,
        "expected a list of hosts, found the string `example.com`",
    );

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts: [8080]",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(
        &message,
        "expected a host rule string, found the number `8080`",
    );
}

#[test]
fn memory_limit_that_is_not_a_size_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  memory_limit: lots",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.memory_limit",
    );
    assert_contains(&message, "`lots` is not a size");
    assert_contains(&message, "write it like 64MiB");
}

#[test]
fn memory_limit_under_one_mebibyte_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  memory_limit: 512KiB",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.memory_limit",
    );
    assert_eq!(message, "must be at least 1MiB");
}

#[test]
fn max_sockets_defaults_to_16_and_takes_a_count_up_to_1024() {
    let c = single("connectors:\n  - id: grafana\n");
    assert_eq!(c.sandbox.max_sockets, 16);
    for written in [0u32, 1, 1024] {
        let c = single(&format!(
            "connectors:\n  - id: grafana\n    sandbox:\n      max_sockets: {written}\n"
        ));
        assert_eq!(c.sandbox.max_sockets, written, "max_sockets: {written}");
    }
}

#[test]
fn max_sockets_out_of_range_or_not_a_count_is_rejected() {
    for (written, says) in [
        ("1025", "1025 is not a count from 0 to 1024"),
        ("-1", "-1 is not a count from 0 to 1024"),
        ("many", "expected a count, found the string `many`"),
    ] {
        let message = rejected(
            &[
                "id: x",
                "component: grafana",
                "sandbox:",
                &format!("  max_sockets: {written}"),
            ],
            "connectors[1] (id \"x\")",
            "sandbox.max_sockets",
        );
        assert_contains(&message, says);
    }
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  max_sockets: 5000",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.max_sockets",
    );
    assert_contains(
        &message,
        "each socket holds a file descriptor of the process",
    );
}
