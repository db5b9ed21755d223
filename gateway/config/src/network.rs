//! Which upstream addresses a provider may reach.
//!
//! Whoever writes an LLMProvider chooses where the gateway connects, from inside the cluster, with
//! the gateway's network position. Without a rule, a base URL of `http://169.254.169.254/` turns
//! the gateway into a proxy to the node's cloud metadata service (instance credentials). The rule
//! is enforced twice: [`AddressRule::check_host`] refuses IP literals and well-known names when a
//! config is validated, and the gateway's resolver applies [`AddressRule::check_ip`] to every
//! address a host name resolves to, on every connect (so a name re-pointed after validation,
//! DNS rebinding, is caught too).
//!
//! Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed: in-cluster model servers
//! live there. Only addresses no model server has a reason to use are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Which upstream addresses a provider may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressRule {
    /// `allow_private_network: true`: any address.
    AllowAll,
    /// Standalone files' default: refuse unspecified, link-local and cloud-metadata addresses.
    NoLinkLocal,
    /// Pushed snapshots' default (many authors): additionally refuse loopback.
    NoLocal,
}

/// Appended to every refusal, so the reader knows the way out.
const OPT_OUT: &str = "set allow_private_network: true to allow it";

impl AddressRule {
    /// Why `ip` is refused under this rule, or Ok. The reason names only the kind of address
    /// (e.g. `link-local address (cloud metadata endpoint)`); callers add the address.
    pub fn check_ip(self, ip: IpAddr) -> Result<(), String> {
        let Some(refusal) = refusal(ip) else { return Ok(()) };
        match self {
            AddressRule::AllowAll => Ok(()),
            AddressRule::NoLinkLocal if refusal.loopback => Ok(()),
            AddressRule::NoLinkLocal | AddressRule::NoLocal => Err(refusal.reason),
        }
    }

    /// Checks a URL host as written: a name, an IPv4 literal (including the shorthand, octal and
    /// hex spellings resolvers accept, such as `2852039166` for 169.254.169.254), or a bracketed
    /// IPv6 literal (`[::1]`). Literals go through [`AddressRule::check_ip`]; names are compared
    /// with the clouds' metadata host names and, under [`AddressRule::NoLocal`], with `localhost`.
    /// Any other name is allowed here: what it resolves to is checked at connect time.
    ///
    /// The error is a whole sentence naming the host and how to opt out.
    pub fn check_host(self, host: &str) -> Result<(), String> {
        if self == AddressRule::AllowAll {
            return Ok(());
        }
        let refused = |reason: String| format!("host {host:?} is refused: {reason}; {OPT_OUT}");
        if let Some(inner) = host.strip_prefix('[') {
            // RFC 6874 allows a zone after the address (`[fe80::1%25eth0]`); the zone does not
            // change which address it is.
            let address = inner.strip_suffix(']').map(|a| a.split('%').next().unwrap_or(a));
            return match address.and_then(|a| a.parse::<Ipv6Addr>().ok()) {
                Some(ip) => self.check_ip(IpAddr::V6(ip)).map_err(refused),
                None => Err(format!("host {host:?} is not a valid IPv6 address")),
            };
        }
        // Names are case-insensitive, and `name.` (fully qualified) is the same name.
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        if let Some(ip) = parse_ipv4(&name) {
            return self.check_ip(IpAddr::V4(ip)).map_err(refused);
        }
        if let Ok(ip) = name.parse::<Ipv6Addr>() {
            // Not valid in a URL without brackets, but whoever calls us may have stripped them.
            return self.check_ip(IpAddr::V6(ip)).map_err(refused);
        }
        if let Some((_, cloud)) = METADATA_HOSTS.iter().find(|(known, _)| *known == name) {
            return Err(refused(format!("cloud metadata service name ({cloud})")));
        }
        // RFC 6761 §6.3: `localhost` and every name under it are loopback.
        if self == AddressRule::NoLocal && (name == "localhost" || name.ends_with(".localhost")) {
            return Err(refused("loopback name".to_owned()));
        }
        Ok(())
    }
}

/// Host names that reach a cloud metadata service from inside the cloud. Only a convenience: they
/// resolve to addresses [`refusal`] refuses anyway, but a name refused at validation is a clearer
/// error than a connect failure later.
/// - GCP: `metadata.google.internal` is the documented name
///   (<https://cloud.google.com/compute/docs/metadata/querying-metadata>); the short `metadata`
///   resolves too, through the `google.internal` search domain GCE VMs get from DHCP.
///   `metadata.goog` is Google's alias in its own `.goog` TLD (seen in SSRF filters; no first-party
///   page found), refused because no third party can host an upstream there.
/// - AWS: `instance-data` (and `instance-data.ec2.internal`) is answered by the VPC resolver with
///   169.254.169.254; older EC2 user guides used `http://instance-data/latest/meta-data/`.
/// - Tencent Cloud: `metadata.tencentyun.com`
///   (<https://www.tencentcloud.com/document/product/213/4934>).
///
/// Not listed: Azure, Alibaba and Oracle document only addresses for their metadata services
/// (`metadata.azure.com` is not an Azure IMDS name in Microsoft's documentation).
const METADATA_HOSTS: [(&str, &str); 6] = [
    ("metadata.google.internal", "GCP"),
    ("metadata", "GCP"),
    ("metadata.goog", "GCP"),
    ("instance-data", "AWS"),
    ("instance-data.ec2.internal", "AWS"),
    ("metadata.tencentyun.com", "Tencent Cloud"),
];

/// Why an address is refused, and whether only [`AddressRule::NoLocal`] refuses it.
struct Refusal {
    loopback: bool,
    reason: String,
}

impl Refusal {
    fn always(reason: &str) -> Option<Refusal> {
        Some(Refusal { loopback: false, reason: reason.to_owned() })
    }
}

fn refusal(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(ip) => refusal_v4(ip),
        IpAddr::V6(ip) => refusal_v6(ip),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<Refusal> {
    // Exact metadata addresses first: their reason is the more useful one.
    match ip.octets() {
        // AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean and most others serve instance metadata
        // (and credentials) here:
        // <https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html>,
        // <https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service>,
        // <https://docs.oracle.com/iaas/Content/Compute/Tasks/gettingmetadata.htm>.
        [169, 254, 169, 254] => Refusal::always("link-local address (cloud metadata endpoint)"),
        // ECS task credentials
        // (<https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html>).
        [169, 254, 170, 2] => Refusal::always("link-local address (AWS ECS credentials endpoint)"),
        // <https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html>
        [169, 254, 170, 23] => Refusal::always("link-local address (AWS EKS Pod Identity Agent)"),
        // Alibaba Cloud ECS (<https://www.alibabacloud.com/help/en/ecs/user-guide/view-instance-metadata>).
        [100, 100, 100, 200] => Refusal::always("cloud metadata endpoint (Alibaba Cloud)"),
        // Oracle Cloud Infrastructure Classic (retired); listed by SSRF references, no first-party
        // page found. It lies in 192.0.0.0/24 (IETF protocol assignments), where no upstream lives.
        [192, 0, 0, 192] => Refusal::always("cloud metadata endpoint (Oracle Cloud Classic)"),
        // Azure's platform address: WireServer (VM agent, extension settings), DNS and DHCP. Public
        // but answered by the host node of every Azure VM
        // (<https://learn.microsoft.com/azure/virtual-network/what-is-ip-address-168-63-129-16>).
        [168, 63, 129, 16] => Refusal::always("Azure platform address (WireServer)"),
        // Linux connects 0.0.0.0 to the local host; the rest of 0/8 cannot be a destination
        // (RFC 1122 §3.2.1.3).
        [0, 0, 0, 0] => Refusal::always("unspecified address (reaches this host)"),
        [0, ..] => Refusal::always("\"this network\" address (0.0.0.0/8)"),
        // RFC 3927: link-local. Also where ECS, EKS, Tencent (169.254.0.23) and Scaleway
        // (169.254.42.42) put their metadata and credential services.
        [169, 254, ..] => Refusal::always("link-local address"),
        [127, ..] => Some(Refusal { loopback: true, reason: "loopback address".to_owned() }),
        _ => None,
    }
}

fn refusal_v6(ip: Ipv6Addr) -> Option<Refusal> {
    if ip.is_unspecified() {
        return Refusal::always("unspecified address (reaches this host)");
    }
    if ip.is_loopback() {
        return Some(Refusal { loopback: true, reason: "loopback address".to_owned() });
    }
    let segments = ip.segments();
    // IPv6 forms that carry an IPv4 address are judged by that address. Linux connects an
    // IPv4-mapped destination (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) over IPv4 to the embedded
    // address. The deprecated IPv4-compatible form (::a.b.c.d, §2.5.5.1) and the NAT64 well-known
    // prefix (64:ff9b::/96, RFC 6052) can carry one too. 6to4 (2002::/16) is not unwrapped: its
    // embedded address is a relay's, not the destination.
    let embedded = match segments {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => Some(("IPv4-mapped", hi, lo)),
        [0, 0, 0, 0, 0, 0, hi, lo] => Some(("IPv4-compatible", hi, lo)),
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(("NAT64", hi, lo)),
        _ => None,
    };
    if let Some((form, hi, lo)) = embedded {
        let v4 = Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
        return refusal_v4(v4).map(|r| Refusal { reason: format!("{}, {form} {v4}", r.reason), ..r });
    }
    match segments {
        // AWS IMDS over IPv6 (Nitro instances)
        // (<https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html>).
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254] => Refusal::always("cloud metadata endpoint (AWS, IPv6)"),
        // <https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html>
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x23] => Refusal::always("AWS EKS Pod Identity Agent (IPv6)"),
        // GCP's metadata server for IPv6 VMs, as other SSRF filters list it; these unique-local
        // addresses are not link-local, so only an exact entry catches them.
        [0xfd20, 0x00ce, 0, 0, 0, 0, 0, 0x254] => Refusal::always("cloud metadata endpoint (GCP, IPv6)"),
        // RFC 4291 §2.5.6: fe80::/10.
        [first, ..] if first & 0xffc0 == 0xfe80 => Refusal::always("link-local address"),
        _ => None,
    }
}

/// Parses a host as an IPv4 address the way resolvers do, not only as dotted decimal: glibc's
/// `getaddrinfo` (through `inet_aton`) reads `127.1`, `0x7f.0.0.1`, `0177.0.0.1` and `2130706433`
/// all as 127.0.0.1. Follows the WHATWG URL standard's IPv4 parser
/// (<https://url.spec.whatwg.org/#concept-ipv4-parser>): one to four parts, each decimal, octal
/// (leading `0`) or hex (`0x`); all but the last are one byte, the last fills the rest.
fn parse_ipv4(host: &str) -> Option<Ipv4Addr> {
    let mut parts = Vec::with_capacity(4);
    for part in host.split('.') {
        if parts.len() == 4 {
            return None;
        }
        parts.push(parse_ipv4_part(part)?);
    }
    let (&last, init) = parts.split_last()?;
    if init.iter().any(|&part| part > 255) {
        return None;
    }
    let last_bits = 8 * (5 - parts.len() as u32);
    if last >= 1 << last_bits {
        return None;
    }
    let high = init.iter().enumerate().fold(0u64, |acc, (i, &part)| acc | (part << (24 - 8 * i)));
    u32::try_from(high | last).ok().map(Ipv4Addr::from)
}

fn parse_ipv4_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if part.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // `0x` alone is zero; a part too long for u64 is not an address at all.
    if digits.is_empty() { Some(0) } else { u64::from_str_radix(digits, radix).ok() }
}

#[cfg(test)]
mod tests {
    use super::AddressRule::{AllowAll, NoLinkLocal, NoLocal};
    use super::*;

    /// Expected outcome per rule: `None` means allowed, `Some(text)` refused with a reason
    /// containing `text`.
    struct Case {
        ip: &'static str,
        link_local: Option<&'static str>,
        local: Option<&'static str>,
    }

    const fn allowed(ip: &'static str) -> Case {
        Case { ip, link_local: None, local: None }
    }
    const fn refused(ip: &'static str, why: &'static str) -> Case {
        Case { ip, link_local: Some(why), local: Some(why) }
    }
    const fn loopback(ip: &'static str) -> Case {
        Case { ip, link_local: None, local: Some("loopback") }
    }

    const IPS: &[Case] = &[
        // Public and private networks stay reachable.
        allowed("8.8.8.8"),
        allowed("10.0.0.1"),
        allowed("172.16.0.1"),
        allowed("192.168.1.10"),
        allowed("100.64.0.1"),
        allowed("100.100.100.201"),
        allowed("192.0.0.191"),
        allowed("169.253.255.255"),
        allowed("169.255.0.0"),
        allowed("1.0.0.0"),
        allowed("2001:db8::1"),
        allowed("2606:4700::1111"),
        allowed("fd00::1"),
        allowed("fd00:ec2::253"),
        allowed("fd20:ce::253"),
        allowed("fec0::1"),
        allowed("::ffff:8.8.8.8"),
        allowed("64:ff9b::808:808"),
        allowed("2002:a9fe:a9fe::1"),
        // Unspecified and "this network".
        refused("0.0.0.0", "unspecified"),
        refused("0.1.2.3", "this network"),
        refused("0.255.255.255", "this network"),
        refused("::", "unspecified"),
        // Link-local and metadata.
        refused("169.254.169.254", "link-local address (cloud metadata endpoint)"),
        refused("169.254.170.2", "ECS"),
        refused("169.254.170.23", "Pod Identity"),
        refused("169.254.0.1", "link-local"),
        refused("169.254.255.255", "link-local"),
        refused("100.100.100.200", "Alibaba"),
        refused("192.0.0.192", "Oracle"),
        refused("168.63.129.16", "WireServer"),
        refused("fe80::1", "link-local"),
        refused("febf:ffff::1", "link-local"),
        refused("fd00:ec2::254", "AWS"),
        refused("fd00:ec2::23", "Pod Identity"),
        refused("fd20:ce::254", "GCP"),
        // IPv4 carried in IPv6.
        refused(
            "::ffff:169.254.169.254",
            "link-local address (cloud metadata endpoint), IPv4-mapped 169.254.169.254",
        ),
        refused("::ffff:a9fe:a9fe", "IPv4-mapped"),
        refused("::ffff:0.0.0.0", "unspecified"),
        refused("::169.254.169.254", "IPv4-compatible"),
        refused("64:ff9b::169.254.169.254", "NAT64"),
        refused("64:ff9b::100.100.100.200", "Alibaba"),
        // Loopback: allowed for standalone files, refused for pushed snapshots.
        loopback("127.0.0.1"),
        loopback("127.255.255.254"),
        loopback("::1"),
        loopback("::ffff:127.0.0.1"),
        loopback("::127.0.0.2"),
    ];

    #[test]
    fn check_ip_per_rule() {
        for case in IPS {
            let ip: IpAddr = case.ip.parse().unwrap();
            assert_eq!(AllowAll.check_ip(ip), Ok(()), "{} under AllowAll", case.ip);
            for (rule, expected) in [(NoLinkLocal, case.link_local), (NoLocal, case.local)] {
                match (rule.check_ip(ip), expected) {
                    (Ok(()), None) => {}
                    (Err(reason), Some(why)) => {
                        assert!(reason.contains(why), "{} under {rule:?}: {reason:?} lacks {why:?}", case.ip);
                    }
                    (got, _) => panic!("{} under {rule:?}: got {got:?}, expected {expected:?}", case.ip),
                }
            }
        }
    }

    #[test]
    fn check_ip_reason_is_the_kind_only() {
        let ip: IpAddr = "169.254.169.254".parse().unwrap();
        assert_eq!(NoLocal.check_ip(ip), Err("link-local address (cloud metadata endpoint)".to_owned()));
    }

    /// (host as written in a URL, refused under NoLinkLocal, refused under NoLocal)
    const HOSTS: &[(&str, bool, bool)] = &[
        ("api.openai.com", false, false),
        ("vllm.models.svc.cluster.local", false, false),
        ("10.0.0.5", false, false),
        ("[2001:db8::1]", false, false),
        ("metadata.example.com", false, false),
        ("mylocalhost", false, false),
        ("localhost.example.com", false, false),
        ("1.2.3.4.5", false, false),
        ("123.example", false, false),
        // Literals.
        ("169.254.169.254", true, true),
        ("169.254.169.254.", true, true),
        ("0.0.0.0", true, true),
        ("[::]", true, true),
        ("[fe80::1]", true, true),
        ("[fe80::1%25eth0]", true, true),
        ("[::ffff:169.254.169.254]", true, true),
        ("[fd00:ec2::254]", true, true),
        ("::ffff:169.254.169.254", true, true),
        ("127.0.0.1", false, true),
        ("[::1]", false, true),
        // Spellings resolvers read as IPv4.
        ("2852039166", true, true),
        ("0xa9fea9fe", true, true),
        ("0251.0376.0251.0376", true, true),
        ("0xA9.0xFE.0xA9.0xFE", true, true),
        ("169.254.43518", true, true),
        ("169.16689662", true, true),
        ("0", true, true),
        ("127.1", false, true),
        ("0x7f.1", false, true),
        ("017700000001", false, true),
        // Names.
        ("metadata.google.internal", true, true),
        ("METADATA.Google.Internal.", true, true),
        ("metadata", true, true),
        ("metadata.goog", true, true),
        ("instance-data", true, true),
        ("instance-data.ec2.internal", true, true),
        ("metadata.tencentyun.com", true, true),
        ("localhost", false, true),
        ("LOCALHOST.", false, true),
        ("ollama.localhost", false, true),
    ];

    #[test]
    fn check_host_per_rule() {
        for &(host, link_local, local) in HOSTS {
            assert_eq!(AllowAll.check_host(host), Ok(()), "{host} under AllowAll");
            for (rule, refused) in [(NoLinkLocal, link_local), (NoLocal, local)] {
                let result = rule.check_host(host);
                assert_eq!(result.is_err(), refused, "{host} under {rule:?}: {result:?}");
            }
        }
    }

    #[test]
    fn check_host_message_names_host_reason_and_opt_out() {
        assert_eq!(
            NoLinkLocal.check_host("169.254.169.254"),
            Err("host \"169.254.169.254\" is refused: link-local address (cloud metadata endpoint); \
                 set allow_private_network: true to allow it"
                .to_owned())
        );
        assert_eq!(
            NoLocal.check_host("metadata.google.internal"),
            Err("host \"metadata.google.internal\" is refused: cloud metadata service name (GCP); \
                 set allow_private_network: true to allow it"
                .to_owned())
        );
        let err = NoLocal.check_host("localhost").unwrap_err();
        assert!(err.contains("loopback name"), "{err}");
    }

    #[test]
    fn check_host_rejects_malformed_ipv6_literals() {
        for host in ["[not-an-ip]", "[::1", "[169.254.169.254]"] {
            let err = NoLinkLocal.check_host(host).unwrap_err();
            assert!(err.contains("not a valid IPv6 address"), "{host}: {err}");
        }
        assert_eq!(AllowAll.check_host("[not-an-ip]"), Ok(()));
    }

    #[test]
    fn parse_ipv4_matches_resolver_spellings() {
        let cases: &[(&str, Option<[u8; 4]>)] = &[
            ("127.0.0.1", Some([127, 0, 0, 1])),
            ("127.1", Some([127, 0, 0, 1])),
            ("127.0.1", Some([127, 0, 0, 1])),
            ("2130706433", Some([127, 0, 0, 1])),
            ("0x7f000001", Some([127, 0, 0, 1])),
            ("0177.0.0.01", Some([127, 0, 0, 1])),
            ("0x", Some([0, 0, 0, 0])),
            ("00", Some([0, 0, 0, 0])),
            ("255.255.255.255", Some([255, 255, 255, 255])),
            ("4294967295", Some([255, 255, 255, 255])),
            ("4294967296", None),
            ("256.0.0.1", None),
            ("1.2.65536", None),
            ("1.2.3.256", None),
            ("1.2.3.4.5", None),
            ("1..2", None),
            ("", None),
            ("08", None),
            ("0x1g", None),
            ("example", None),
            ("99999999999999999999999", None),
        ];
        for &(host, expected) in cases {
            assert_eq!(parse_ipv4(host), expected.map(Ipv4Addr::from), "{host}");
        }
    }
}
