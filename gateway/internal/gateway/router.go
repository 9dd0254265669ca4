package gateway

import (
	"bytes"
	"fmt"
	"strings"
)

// maxParams bounds the path parameters of one route, so a matched request's
// parameters fit in a fixed array and matching allocates nothing.
const maxParams = 4

// span is a parameter value: a range of the raw request path.
type span struct{ start, end int }

// route is one endpoint's path template split into segments. A segment whose name
// is not empty is a parameter ({id} gives name "id").
type route struct {
	segs   []segment
	params int
	ep     *endpoint
}

// segment is a literal path segment, or a parameter when param is set.
type segment struct {
	literal string
	param   bool
}

// router matches raw request paths against the templates of krakend.json. It is
// built once and only read afterwards; matching is a scan of the routes with the
// same number of segments, literal segments compared before parameters, which for
// the 30-odd routes of the API is faster than any map and allocates nothing.
type router struct {
	bySegments map[int][]*route
}

// newRouter compiles the endpoints; two endpoints with the same method and an
// equivalent template are a configuration error.
func newRouter(eps []*endpoint) (*router, error) {
	r := &router{bySegments: map[int][]*route{}}
	seen := map[string]bool{}
	for _, ep := range eps {
		rt, err := compileRoute(ep)
		if err != nil {
			return nil, err
		}
		key := ep.method + " " + rt.shape()
		if seen[key] {
			return nil, fmt.Errorf("endpoint %s %s: another endpoint has the same method and path", ep.method, ep.label)
		}
		seen[key] = true
		r.bySegments[len(rt.segs)] = append(r.bySegments[len(rt.segs)], rt)
	}
	for n, list := range r.bySegments {
		// Routes with fewer parameters first: /notifications/read-all wins over
		// /notifications/{id} when both accept the method.
		sortRoutes(list)
		r.bySegments[n] = list
	}
	return r, nil
}

// compileRoute splits a template such as /api/v1/projects/{id}/members/{userId}.
func compileRoute(ep *endpoint) (*route, error) {
	if !strings.HasPrefix(ep.label, "/") {
		return nil, fmt.Errorf("endpoint %q: path must start with /", ep.label)
	}
	rt := &route{ep: ep}
	for _, s := range strings.Split(ep.label[1:], "/") {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && len(s) > 2 {
			rt.segs = append(rt.segs, segment{literal: s[1 : len(s)-1], param: true})
			rt.params++
			continue
		}
		if strings.ContainsAny(s, "{}:*") {
			return nil, fmt.Errorf("endpoint %q: segment %q is neither literal nor {name}", ep.label, s)
		}
		rt.segs = append(rt.segs, segment{literal: s})
	}
	if rt.params > maxParams {
		return nil, fmt.Errorf("endpoint %q: more than %d parameters", ep.label, maxParams)
	}
	return rt, nil
}

// shape is the template with parameter names erased, for duplicate detection.
func (rt *route) shape() string {
	var b strings.Builder
	for _, s := range rt.segs {
		b.WriteByte('/')
		if s.param {
			b.WriteString("{}")
		} else {
			b.WriteString(s.literal)
		}
	}
	return b.String()
}

// sortRoutes orders by parameter count (stable insertion sort: the lists are short).
func sortRoutes(list []*route) {
	for i := 1; i < len(list); i++ {
		for j := i; j > 0 && list[j].params < list[j-1].params; j-- {
			list[j], list[j-1] = list[j-1], list[j]
		}
	}
}

// match finds the route for method and the raw path. It returns the route and its
// parameter values; when the path matches only under other methods, route is nil
// and pathKnown is true (405 rather than 404).
func (r *router) match(method, path []byte, params *[maxParams]span) (rt *route, pathKnown bool) {
	if len(path) == 0 || path[0] != '/' {
		return nil, false
	}
	n := bytes.Count(path, slash)
	for _, cand := range r.bySegments[n] {
		if !cand.matchPath(path, params) {
			continue
		}
		if cand.ep.method == string(method) {
			return cand, true
		}
		pathKnown = true
	}
	return nil, pathKnown
}

var slash = []byte{'/'}

// matchPath reports whether path fits the template, recording parameter spans.
// A parameter never matches an empty segment.
func (rt *route) matchPath(path []byte, params *[maxParams]span) bool {
	pos, p := 1, 0
	for i, s := range rt.segs {
		end := len(path)
		if i < len(rt.segs)-1 {
			k := bytes.IndexByte(path[pos:], '/')
			if k < 0 {
				return false
			}
			end = pos + k
		}
		seg := path[pos:end]
		if s.param {
			if len(seg) == 0 {
				return false
			}
			params[p] = span{pos, end}
			p++
		} else if string(seg) != s.literal {
			return false
		}
		pos = end + 1
	}
	return true
}

// allowed lists, for a path known under other methods, the methods it accepts.
func (r *router) allowed(path []byte) string {
	var methods []string
	var scratch [maxParams]span
	for _, cand := range r.bySegments[bytes.Count(path, slash)] {
		if cand.matchPath(path, &scratch) {
			methods = append(methods, cand.ep.method)
		}
	}
	return strings.Join(methods, ", ")
}

// pathError says why a raw request path is refused before routing, or "" when it
// is acceptable: control characters (raw or percent-encoded, such as %00, %0A and
// %7F), backslashes (raw or %5C) and escapes that do not decode. Such paths can
// only be attacks or broken clients, and letting them reach lura or a service
// turns bad input into 5xx answers and error logs.
func pathError(path []byte) string {
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' {
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return "the request path has an undecodable percent escape"
			}
			c = unhex(path[i+1])<<4 | unhex(path[i+2])
			i += 2
		}
		if c < 0x20 || c == 0x7f {
			return "the request path contains a control character"
		}
		if c == '\\' {
			return "the request path contains a backslash"
		}
	}
	return ""
}

// paramError says why a path parameter is refused, or "": encoded characters would
// change the service URL lura builds from it, braces could spell another
// parameter's placeholder ({{.UserId}}) in lura's template substitution, and dot
// segments would climb out of the route.
func paramError(v []byte) string {
	if bytes.IndexByte(v, '%') >= 0 {
		return "a path parameter contains an encoded character"
	}
	if bytes.ContainsAny(v, "{}") {
		return "a path parameter contains a brace"
	}
	if bytes.ContainsAny(v, "?#") {
		return "a path parameter contains a query or fragment delimiter"
	}
	if string(v) == "." || string(v) == ".." {
		return "a path parameter is a dot segment"
	}
	return ""
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
