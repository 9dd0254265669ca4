package gateway

import (
	"github.com/luraproject/lura/v2/config"
	"github.com/luraproject/lura/v2/proxy"
)

// proxyFactory builds each endpoint's pipeline from lura's own stages, in the
// order of lura's default factory (proxy.NewDefaultFactory: endpoint plugin and
// static stages around the backend stack of request builder, filters, graphql,
// backend plugin), with one stage left out where it has nothing to do: the load
// balancer. LoadConfig allows one static host per backend, and the gateway's
// backend calls the pooled client of that host, ignoring the URL the balancer
// builds; the balancer's url.Parse of host plus path cost about 1 us and 2
// allocations per request for nothing. An endpoint the gateway's configuration
// rules would not produce (several backends, several hosts, service discovery,
// concurrent calls) still gets lura's default factory, balancer included.
func (g *Gateway) proxyFactory() proxy.Factory {
	logger := luraLogger{g.logger}
	backends := g.backendFactory()
	def := proxy.NewDefaultFactory(backends, logger)
	return proxy.FactoryFunc(func(cfg *config.EndpointConfig) (proxy.Proxy, error) {
		if len(cfg.Backend) != 1 {
			return def.New(cfg)
		}
		b := cfg.Backend[0]
		if len(b.Host) != 1 || (b.SD != "" && b.SD != "static") || b.ConcurrentCalls > 1 {
			return def.New(cfg)
		}
		p := backends(b)
		p = proxy.NewBackendPluginMiddleware(logger, b)(p)
		p = proxy.NewGraphQLMiddleware(logger, b)(p)
		p = proxy.NewFilterHeadersMiddleware(logger, b)(p)
		p = proxy.NewFilterQueryStringsMiddleware(logger, b)(p)
		p = proxy.NewRequestBuilderMiddlewareWithLogger(logger, b)(p)
		p = proxy.NewPluginMiddleware(logger, cfg)(p)
		p = proxy.NewStaticMiddleware(logger, cfg)(p)
		return p, nil
	})
}
