//! Property tests of the allowlist rules and the address vetting: no input
//! makes them panic, a rule's text parses back to the same rule, and the
//! promises of the docs in `rule.rs` and `ip.rs` hold for generated names,
//! spellings and addresses in every range the vetting names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use sandport_policy::ip::{canonical, vet};
use sandport_policy::{EgressPolicy, Grant, HostRule, TcpAllowed};
use url::Url;

/// `prop_assert!` whose default message is the condition's text (which
/// `prop_assert!` itself cannot give when the condition holds a `format!`).
macro_rules! ensure {
    ($cond:expr) => {
        prop_assert!($cond, "{}", stringify!($cond))
    };
    ($cond:expr, $($message:tt)*) => {
        prop_assert!($cond, $($message)*)
    };
}

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn parse(text: &str) -> HostRule {
    HostRule::parse(text).unwrap_or_else(|e| panic!("`{text}` must parse: {e}"))
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap_or_else(|e| panic!("`{text}` must be a URL: {e}"))
}

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

/// One DNS label: letters, digits and inner hyphens.
fn label() -> impl Strategy<Value = String> {
    // `xn--` labels are punycode, which a URL parser decodes and checks.
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?".prop_filter("not punycode", |l| l.get(2..4) != Some("--"))
}

/// A DNS name of one to four labels, ending in a label of letters (so that
/// no URL parser takes it for an IPv4 address).
fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 0..3), "[a-z]{2,6}").prop_map(|(mut labels, tld)| {
        labels.push(tld);
        labels.join(".")
    })
}

/// Text made of the pieces host rules are built from, so that generated
/// input reaches past the first check of the parser.
fn rule_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("http://".to_string()),
        Just("https://".to_string()),
        Just("tcp://".to_string()),
        Just("ftp://".to_string()),
        Just("*.".to_string()),
        Just("*".to_string()),
        Just(":".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("@".to_string()),
        Just("/".to_string()),
        Just(".".to_string()),
        Just("%".to_string()),
        Just(" ".to_string()),
        Just("::ffff:".to_string()),
        Just("0x".to_string()),
        label(),
        "[0-9]{1,6}",
        "\\PC{0,3}",
    ];
    prop::collection::vec(piece, 0..10).prop_map(|pieces| pieces.concat())
}

fn v4_in(base: [u8; 4], prefix: u32) -> impl Strategy<Value = Ipv4Addr> {
    let base = u32::from(Ipv4Addr::from(base));
    let host_bits = 32 - prefix;
    let mask = if host_bits == 32 {
        u32::MAX
    } else {
        (1u32 << host_bits) - 1
    };
    any::<u32>().prop_map(move |r| Ipv4Addr::from((base & !mask) | (r & mask)))
}

fn v6_in(base: u128, prefix: u32) -> impl Strategy<Value = Ipv6Addr> {
    let mask = if prefix == 0 {
        u128::MAX
    } else {
        u128::MAX >> prefix
    };
    any::<u128>().prop_map(move |r| Ipv6Addr::from((base & !mask) | (r & mask)))
}

/// IPv4 addresses `ip.rs` refuses unless a rule names that exact IP:
/// link-local (cloud metadata), "this network" (also `0.0.x.y`, whose
/// IPv4-compatible IPv6 form looks like `::x:y`), broadcast, multicast,
/// reserved.
fn refused_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        v4_in([169, 254, 0, 0], 16),
        Just(Ipv4Addr::new(169, 254, 169, 254)),
        v4_in([0, 0, 0, 0], 8),
        v4_in([0, 0, 0, 0], 16),
        Just(Ipv4Addr::BROADCAST),
        v4_in([224, 0, 0, 0], 4),
        v4_in([240, 0, 0, 0], 4),
    ]
}

/// IPv6 addresses refused unless a rule names that exact IP.
fn refused_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        Just(Ipv6Addr::UNSPECIFIED),
        v6_in(0xfe80 << 112, 10),
        v6_in(0xff00 << 112, 8),
        Just(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    ]
}

/// IPv4 addresses allowed only through a rule naming the host exactly:
/// loopback, private, shared (carrier-grade NAT), benchmarking.
fn internal_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        v4_in([127, 0, 0, 0], 8),
        v4_in([10, 0, 0, 0], 8),
        v4_in([172, 16, 0, 0], 12),
        v4_in([192, 168, 0, 0], 16),
        v4_in([100, 64, 0, 0], 10),
        v4_in([198, 18, 0, 0], 15),
    ]
}

/// IPv6 loopback and unique local addresses.
fn internal_v6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![Just(Ipv6Addr::LOCALHOST), v6_in(0xfc00 << 112, 7)]
}

/// Any IPv4 address, biased towards the ranges the vetting names.
fn some_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        any::<u32>().prop_map(Ipv4Addr::from),
        refused_v4(),
        internal_v4()
    ]
}

/// The IPv6 forms that carry `v4` and that the docs say are judged as it.
/// `::a.b.c.d` for `0.0.0.0` and `0.0.0.1` is `::` and `::1`, IPv6's own
/// unspecified and loopback addresses, so the compatible form leaves them out.
fn carriers(v4: Ipv4Addr, rest: [u16; 5]) -> Vec<Ipv6Addr> {
    let [a, b, c, d] = v4.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    let mut forms = vec![
        v4.to_ipv6_mapped(),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo),
        Ipv6Addr::new(0x2002, hi, lo, rest[0], rest[1], rest[2], rest[3], rest[4]),
    ];
    if u32::from(v4) > 1 {
        forms.push(Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo));
    }
    forms
}

/// The grant of a rule that does not name `ip` itself.
fn other_grants(ip: IpAddr) -> Vec<Grant> {
    let other = if canonical(ip) == IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34)) {
        IpAddr::V4(Ipv4Addr::new(93, 184, 216, 35))
    } else {
        IpAddr::V4(Ipv4Addr::new(93, 184, 216, 34))
    };
    vec![Grant::Wildcard, Grant::Named, Grant::ExactIp(other)]
}

// ---------------------------------------------------------------------------
// Parsing: no panic, and the text round-trips
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Any text is a rule or a `RuleError` quoting it; a rule's text parses
    /// to the same rule; judging any host or URL with it does not panic.
    #[test]
    fn any_text_parses_or_is_refused_naming_it(
        text in prop_oneof![any::<String>(), rule_like()],
        host in prop_oneof![any::<String>(), rule_like()],
        port: u16,
        own: bool,
    ) {
        match HostRule::parse(&text) {
            Ok(rule) => {
                let again = HostRule::parse(&rule.to_string());
                prop_assert_eq!(again.as_ref(), Ok(&rule));
                let _ = (rule.grant(), rule.tcp_port(own));
                let _ = rule.matches_host(&host);
                let _ = rule.permits_tcp(&host, port, own);
                if let Ok(url) = Url::parse(&host) {
                    let _ = rule.permits(&url);
                }
            }
            Err(e) => ensure!(e.to_string().contains(&text), "{}", e),
        }
    }

    /// Rules written as the docs describe them
    /// (`[scheme://]host[:port][/path-prefix]`, host maybe `*.`) parse, and
    /// their text parses back to the same rule.
    #[test]
    fn well_formed_rules_parse_and_round_trip(
        scheme in prop::option::of(prop_oneof![Just("http"), Just("https"), Just("HTTPS")]),
        host in prop_oneof![
            domain(),
            domain().prop_map(|d| format!("*.{d}")),
            any::<Ipv4Addr>().prop_map(|a| a.to_string()),
            any::<Ipv6Addr>().prop_map(|a| format!("[{a}]")),
        ],
        port in prop::option::of(1u16..),
        path in prop::collection::vec(label(), 0..3),
    ) {
        let mut text = String::new();
        if let Some(scheme) = scheme {
            text.push_str(scheme);
            text.push_str("://");
        }
        text.push_str(&host);
        if let Some(port) = port {
            text.push_str(&format!(":{port}"));
        }
        for segment in &path {
            text.push('/');
            text.push_str(segment);
        }
        let rule = parse(&text);
        prop_assert_eq!(rule.to_string(), text.clone());
        prop_assert_eq!(parse(&rule.to_string()), rule.clone());
        // Surrounding blanks are not part of the rule.
        prop_assert_eq!(parse(&format!("  {text}\t")), rule);
    }

    /// `tcp://` rules need a port and have no path; with a port they open
    /// raw TCP to exactly that port, and round-trip.
    #[test]
    fn tcp_rules_need_a_port_and_open_only_it(
        host in domain(),
        port in 1u16..,
        other in 1u16..,
        segment in label(),
    ) {
        ensure!(HostRule::parse(&format!("tcp://{host}")).is_err());
        ensure!(HostRule::parse(&format!("tcp://{host}:{port}/{segment}")).is_err());
        let rule = parse(&format!("tcp://{host}:{port}"));
        prop_assert_eq!(parse(&rule.to_string()), rule.clone());
        prop_assert_eq!(rule.tcp_port(false), Some(port));
        ensure!(rule.permits_tcp(&host, port, false));
        prop_assert_eq!(rule.permits_tcp(&host, other, false), other == port);
        // An http rule opens TCP only when it is the connector's own endpoint.
        let http = parse(&format!("http://{host}:{port}"));
        ensure!(!http.permits_tcp(&host, port, false));
        ensure!(http.permits_tcp(&host, port, true));
    }
}

// ---------------------------------------------------------------------------
// Matching names
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// `*.example.com` matches any name ending in `.example.com`, in any
    /// letter case, and never `example.com` itself, `example.com.evil.net`,
    /// `evilexample.com`, or the name only in a URL's user info, path,
    /// query or fragment.
    #[test]
    fn wildcards_match_subdomains_only(
        suffix in domain(),
        sub in prop::collection::vec(label(), 1..3),
        evil in domain(),
        glued in label(),
        case_seed in any::<u64>(),
    ) {
        let sub = sub.join(".");
        // The other name must not itself be under the suffix.
        let under = format!(".{suffix}");
        prop_assume!(evil != suffix && !format!(".{evil}").ends_with(&under));
        let rule = parse(&format!("*.{suffix}"));
        prop_assert_eq!(rule.grant(), Grant::Wildcard);
        let host = format!("{sub}.{suffix}");
        let shouted = flip_case(&host, case_seed);
        ensure!(rule.matches_host(&host));
        ensure!(rule.matches_host(&shouted), "{}", shouted);
        ensure!(rule.matches_host(&format!("{host}.")));
        ensure!(rule.permits(&url(&format!("https://{shouted}/x"))));
        ensure!(rule.permits(&url(&format!("http://{host}./"))));

        ensure!(!rule.matches_host(&suffix));
        ensure!(!rule.permits(&url(&format!("https://{suffix}/"))));
        let lookalike = format!("{suffix}.{evil}");
        ensure!(!rule.matches_host(&lookalike));
        ensure!(!rule.permits(&url(&format!("https://{sub}.{lookalike}/"))));
        let glued = format!("{glued}{suffix}");
        ensure!(!rule.matches_host(&glued));
        ensure!(!rule.permits(&url(&format!("https://{glued}/"))));
        for hidden in [
            format!("https://{host}@{evil}/"),
            format!("https://{evil}/{host}"),
            format!("https://{evil}/?u={host}"),
            format!("https://{evil}/#{host}"),
        ] {
            ensure!(!rule.permits(&url(&hidden)), "{}", hidden);
        }
    }

    /// A name rule matches that name in any letter case, with or without a
    /// trailing dot, and no name with a label more or less.
    #[test]
    fn names_match_exactly_in_any_case(
        name in domain(),
        extra in label(),
        case_seed in any::<u64>(),
    ) {
        let rule = parse(&name);
        prop_assert_eq!(rule.grant(), Grant::Named);
        let shouted = flip_case(&name, case_seed);
        ensure!(rule.matches_host(&shouted));
        ensure!(rule.matches_host(&format!("{shouted}.")));
        ensure!(rule.permits(&url(&format!("http://{shouted}/"))));
        ensure!(rule.permits(&url(&format!("https://{shouted}./"))));
        // The rule itself may be written in any case.
        ensure!(parse(&shouted).matches_host(&name));
        for other in [
            format!("{extra}.{name}"),
            format!("{name}.{extra}"),
            format!("{extra}{name}"),
        ] {
            ensure!(!rule.matches_host(&other), "{}", other);
        }
        ensure!(!rule.permits(&url(&format!("http://{name}@{extra}.{name}.evil/"))));
    }

    /// Without a port a rule means the scheme's default port; with one, only
    /// that port. Without a scheme, http and https; with one, only it.
    #[test]
    fn ports_and_schemes_are_exact(
        name in domain(),
        port in 1u16..,
        other in 1u16..,
        https: bool,
    ) {
        let scheme = if https { "https" } else { "http" };
        let default = if https { 443 } else { 80 };
        let bare = parse(&name);
        ensure!(bare.permits(&url(&format!("http://{name}/"))));
        ensure!(bare.permits(&url(&format!("https://{name}/"))));
        prop_assert_eq!(
            bare.permits(&url(&format!("{scheme}://{name}:{port}/"))),
            port == default
        );
        let rule = parse(&format!("{scheme}://{name}:{port}"));
        ensure!(rule.permits(&url(&format!("{scheme}://{name}:{port}/a"))));
        prop_assert_eq!(
            rule.permits(&url(&format!("{scheme}://{name}:{other}/a"))),
            other == port
        );
        let wrong = if https { "http" } else { "https" };
        ensure!(!rule.permits(&url(&format!("{wrong}://{name}:{port}/a"))));
        ensure!(!bare.permits(&url(&format!("ftp://{name}/"))));
        ensure!(!bare.permits(&url(&format!("tcp://{name}:{default}"))));
    }

    /// A path prefix matches whole segments: itself and what lies under it,
    /// not a longer segment.
    #[test]
    fn path_prefixes_match_whole_segments(
        name in domain(),
        prefix in prop::collection::vec(label(), 1..3),
        below in label(),
        glued in label(),
    ) {
        let prefix = format!("/{}", prefix.join("/"));
        let rule = parse(&format!("https://{name}{prefix}/"));
        ensure!(rule.permits(&url(&format!("https://{name}{prefix}"))));
        ensure!(rule.permits(&url(&format!("https://{name}{prefix}/"))));
        ensure!(rule.permits(&url(&format!("https://{name}{prefix}/{below}"))));
        ensure!(!rule.permits(&url(&format!("https://{name}{prefix}{glued}"))));
        ensure!(!rule.permits(&url(&format!("https://{name}/"))));
    }
}

/// `text` with letters upper-cased where the bits of `seed` say so.
fn flip_case(text: &str, seed: u64) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if seed.rotate_left(i as u32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// IP literals in rules
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// An IPv4 rule admits its address in every spelling a URL may give it
    /// (dotted, one decimal or hex number, IPv4-mapped IPv6) and no other
    /// address; its grant is that exact address.
    #[test]
    fn ipv4_rules_admit_every_spelling_of_their_address_only(
        address in some_v4(),
        other in some_v4(),
        port in 1u16..,
    ) {
        let rule = parse(&format!("http://{address}:{port}"));
        prop_assert_eq!(rule.grant(), Grant::ExactIp(IpAddr::V4(address)));
        let n = u32::from(address);
        for spelling in [
            address.to_string(),
            n.to_string(),
            format!("{n:#x}"),
            format!("[{}]", address.to_ipv6_mapped()),
        ] {
            ensure!(
                rule.permits(&url(&format!("http://{spelling}:{port}/"))),
                "{}", spelling
            );
        }
        // Hosts given as text: a dotted address, or an IPv6 one in brackets.
        ensure!(rule.matches_host(&address.to_string()));
        ensure!(rule.matches_host(&format!("[{}]", address.to_ipv6_mapped())));
        if other != address {
            ensure!(!rule.permits(&url(&format!("http://{other}:{port}/"))));
            ensure!(!rule.matches_host(&other.to_string()));
        }
    }

    /// An IPv6 rule admits its address however the URL spells it, and its
    /// grant is the address as the network sees it.
    #[test]
    fn ipv6_rules_admit_their_address_in_any_spelling(
        address: Ipv6Addr,
        other: Ipv6Addr,
        port in 1u16..,
    ) {
        let rule = parse(&format!("http://[{address}]:{port}"));
        prop_assert_eq!(rule.grant(), Grant::ExactIp(canonical(IpAddr::V6(address))));
        let s = address.segments();
        let long = format!(
            "{:X}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:X}",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        );
        ensure!(rule.permits(&url(&format!("http://[{long}]:{port}/"))));
        ensure!(rule.matches_host(&format!("[{long}]")));
        if canonical(IpAddr::V6(other)) != canonical(IpAddr::V6(address)) {
            ensure!(!rule.permits(&url(&format!("http://[{other}]:{port}/"))));
        }
    }
}

// ---------------------------------------------------------------------------
// Vetting resolved addresses
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Link-local, cloud metadata, unspecified, broadcast, multicast and
    /// reserved addresses, and the IPv6 forms carrying such an IPv4
    /// address, are refused unless the rule is that exact IP; the refusal
    /// names the address.
    #[test]
    fn always_refused_addresses_need_that_exact_ip(
        address in prop_oneof![
            refused_v4().prop_map(IpAddr::V4),
            refused_v6().prop_map(IpAddr::V6),
        ],
        rest: [u16; 5],
    ) {
        let mut forms = vec![address];
        if let IpAddr::V4(v4) = address {
            forms.extend(carriers(v4, rest).into_iter().map(IpAddr::V6));
        }
        for form in forms {
            for grant in other_grants(form) {
                let refused = vet(form, grant);
                ensure!(refused.is_err(), "{} under {:?}", form, grant);
                let why = refused.unwrap_err();
                ensure!(why.contains(&canonical(form).to_string()), "{}", why);
            }
            ensure!(vet(form, Grant::ExactIp(form)).is_ok(), "{}", form);
            ensure!(vet(form, Grant::ExactIp(address)).is_ok(), "{}", form);
        }
    }

    /// Loopback, private, shared and benchmarking addresses, and the IPv6
    /// forms carrying such an IPv4 address, are refused through a wildcard
    /// and allowed through a rule naming the host.
    #[test]
    fn internal_addresses_need_a_named_host(
        address in prop_oneof![
            internal_v4().prop_map(IpAddr::V4),
            internal_v6().prop_map(IpAddr::V6),
        ],
        rest: [u16; 5],
    ) {
        let mut forms = vec![address];
        if let IpAddr::V4(v4) = address {
            forms.extend(carriers(v4, rest).into_iter().map(IpAddr::V6));
        }
        for form in forms {
            ensure!(vet(form, Grant::Wildcard).is_err(), "{}", form);
            ensure!(vet(form, Grant::Named).is_ok(), "{}", form);
            ensure!(vet(form, Grant::ExactIp(form)).is_ok(), "{}", form);
        }
    }

    /// Every IPv6 form that carries an IPv4 address (mapped, compatible,
    /// NAT64, 6to4) is judged exactly as that IPv4 address, under every
    /// grant; `canonical` gives that address and is idempotent.
    #[test]
    fn ipv6_forms_of_an_ipv4_address_are_judged_as_it(
        v4 in some_v4(),
        rest: [u16; 5],
    ) {
        let plain = IpAddr::V4(v4);
        for form in carriers(v4, rest) {
            let form = IpAddr::V6(form);
            prop_assert_eq!(canonical(form), plain, "{}", form);
            prop_assert_eq!(canonical(canonical(form)), plain);
            for grant in other_grants(plain)
                .into_iter()
                .chain([Grant::ExactIp(plain), Grant::ExactIp(form)])
            {
                prop_assert_eq!(
                    vet(form, grant).is_ok(),
                    vet(plain, grant).is_ok(),
                    "{} under {:?}", form, grant
                );
            }
        }
    }

    /// `canonical` is idempotent for any address, and a rule naming an
    /// exact IP vouches for it whatever its range.
    #[test]
    fn exact_ip_grants_vouch_for_their_address(address: IpAddr) {
        prop_assert_eq!(canonical(canonical(address)), canonical(address));
        ensure!(vet(address, Grant::ExactIp(address)).is_ok());
        ensure!(vet(canonical(address), Grant::ExactIp(address)).is_ok());
    }
}

// ---------------------------------------------------------------------------
// One connector's policy
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Raw TCP opens only through the connector's own endpoint and
    /// `tcp://` rules; the seeded destinations are the IP literals among
    /// them, allowed in any spelling of their address.
    #[test]
    fn tcp_opens_only_through_the_own_endpoint_and_tcp_rules(
        own in any::<Ipv4Addr>(),
        own_port in 1u16..,
        tcp in any::<Ipv4Addr>(),
        tcp_port in 1u16..,
        http in any::<Ipv4Addr>(),
        http_port in 1u16..,
    ) {
        let policy = EgressPolicy::new(
            HostRule::origin("http", &own.to_string(), own_port).map_err(|e| TestCaseError::fail(e.to_string()))?,
            vec![
                parse(&format!("tcp://{tcp}:{tcp_port}")),
                parse(&format!("http://{http}:{http_port}")),
            ],
        );
        ensure!(policy.tcp_grant(&own.to_string(), own_port).is_some());
        ensure!(policy.tcp_grant(&tcp.to_string(), tcp_port).is_some());
        let http_opened = (http == own && http_port == own_port) || (http == tcp && http_port == tcp_port);
        prop_assert_eq!(policy.tcp_grant(&http.to_string(), http_port).is_some(), http_opened);

        let seeded = TcpAllowed::seeded(&policy);
        for (address, port) in [(own, own_port), (tcp, tcp_port)] {
            ensure!(seeded.permits(SocketAddr::new(IpAddr::V4(address), port)));
            ensure!(seeded.permits(SocketAddr::new(IpAddr::V6(address.to_ipv6_mapped()), port)));
        }
        prop_assert_eq!(
            seeded.permits(SocketAddr::new(IpAddr::V4(http), http_port)),
            http_opened
        );
    }

    /// One connector holds at most `TcpAllowed::MAX` destinations; those it
    /// holds stay allowed.
    #[test]
    fn tcp_destinations_are_capped(
        addresses in prop::collection::hash_set(any::<(u32, u16)>(), TcpAllowed::MAX + 1..TcpAllowed::MAX + 20),
    ) {
        let allowed = TcpAllowed::default();
        let mut held = Vec::new();
        for (ip, port) in addresses {
            let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port);
            if allowed.insert(address) {
                held.push(address);
            } else {
                ensure!(!allowed.permits(address));
            }
        }
        prop_assert_eq!(held.len(), TcpAllowed::MAX);
        for address in held {
            ensure!(allowed.permits(address));
            ensure!(allowed.insert(address), "a held destination is re-recorded");
        }
    }
}
