package intake

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrInternalAddress is why a reply URL is refused when it targets
// loopback, a private or link-local network (the cloud metadata address
// among them) or another address that is not the public internet, and no
// entry of ReplyURLAllow permits it. A webhook must not make casebot POST
// into its own network.
var ErrInternalAddress = errors.New("reply URL targets an internal address; an operator may allow it in http.reply_url_allow")

// nonPublic are the special-purpose ranges netip's predicates do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and the broadcast address
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
}

// nat64 embeds an IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// internal reports whether a is not a public internet address.
func internal(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		return internal(netip.AddrFrom4([4]byte(b[12:])))
	}
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ReplyURLAllow lists the internal hosts an operator lets reply URLs
// target after all (config http.reply_url_allow): a helpdesk on the
// private network, or the demo's receiver on loopback. The nil value allows
// none.
type ReplyURLAllow struct {
	hosts    []string
	prefixes []netip.Prefix
}

// ParseReplyURLAllow reads entries, each a host name ("hooks.internal"),
// an IP address ("10.0.0.7") or a CIDR prefix ("127.0.0.1/32"). It returns
// nil for no entries. A host name is allowed whatever it resolves to; an
// address or prefix allows reply URLs naming it and host names resolving
// into it.
func ParseReplyURLAllow(entries []string) (*ReplyURLAllow, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	a := &ReplyURLAllow{}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if p, err := netip.ParsePrefix(e); err == nil {
			if p != p.Masked() {
				return nil, fmt.Errorf("%q has host bits set; did you mean %s?", e, p.Masked())
			}
			a.prefixes = append(a.prefixes, p)
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			if ip.Zone() != "" {
				return nil, fmt.Errorf("%q has a zone; give the address or a prefix", e)
			}
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		h := normalHost(e)
		if !isHostName(h) {
			return nil, fmt.Errorf("%q is not a host name, IP address or CIDR prefix", e)
		}
		a.hosts = append(a.hosts, h)
	}
	return a, nil
}

// hasHost reports whether the normalised host name h is allowed.
func (a *ReplyURLAllow) hasHost(h string) bool {
	if a == nil {
		return false
	}
	for _, x := range a.hosts {
		if x == h {
			return true
		}
	}
	return false
}

// permits reports whether ip may be connected to.
func (a *ReplyURLAllow) permits(ip netip.Addr) bool {
	if !internal(ip) {
		return true
	}
	if a == nil {
		return false
	}
	ip = ip.WithZone("").Unmap()
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// normalHost lower-cases a host name and drops the final dot of a fully
// qualified one, so "LocalHost." and "localhost" are one host.
func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// isHostName reports whether h is a DNS name of letters, digits and
// hyphens whose last label is not numeric: "127.1" or "0x7f000001" are
// addresses to some resolvers, and no top-level domain looks like that.
func isHostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != "" && !strings.HasPrefix(last, "0x")
}

// loopbacks are what "localhost" names.
var loopbacks = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}

// checkReplyTarget refuses a reply URL (already checked by checkReplyURL)
// whose host is an internal address, a localhost name, or not a host name
// at all, unless allow permits it. A name resolving to an internal address
// passes here; the dial check of the Outbound's client refuses it when it
// connects, which also covers a name whose answer changes (DNS rebinding).
func checkReplyTarget(raw string, allow *ReplyURLAllow) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errUnsupportedURL
	}
	h := normalHost(u.Hostname())
	if allow.hasHost(h) {
		return nil
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		if !allow.permits(ip) {
			return ErrInternalAddress
		}
		return nil
	}
	if !isHostName(h) {
		return errUnsupportedURL
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		for _, ip := range loopbacks {
			if allow.permits(ip) {
				return nil
			}
		}
		return ErrInternalAddress
	}
	return nil
}

// replyDialContext returns the DialContext of the Outbound's transport: it
// connects to the address a name resolved to only when allow permits that
// address, checked on the socket about to connect, so neither a name that
// resolves inside (or is made to, between intake and sending) nor a
// redirect can reach an internal host. A host name on the allow-list
// connects wherever it resolves.
func replyDialContext(allow *ReplyURLAllow, d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	guarded := *d
	guarded.Control = func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrInternalAddress, address)
		}
		if !allow.permits(ap.Addr()) {
			return fmt.Errorf("%w: %s", ErrInternalAddress, ap.Addr())
		}
		return nil
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, _, err := net.SplitHostPort(addr); err == nil && allow.hasHost(normalHost(host)) {
			return d.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
}
