package consume

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics are package-level so that every subscriber of a process adds
// to the same series, registered once on the default registry. They are
// labelled by consumer group and stream key.
var (
	labels = []string{"group", "stream"}

	metricHandled = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_messages_handled_total",
		Help: "Messages whose handler succeeded.",
	}, labels)
	metricFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_handler_failures_total",
		Help: "Handler failures; the message stays pending and is retried.",
	}, labels)
	metricDeadLettered = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_dead_lettered_total",
		Help: "Messages moved to the dead-letter stream.",
	}, labels)
	metricPanics = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_handler_panics_total",
		Help: "Handler panics recovered; each counts as a failure of the message.",
	}, labels)
	// MetricDeadLetterLength is set by the transports after each
	// dead-lettering, so an alert can fire on a growing dead-letter stream.
	MetricDeadLetterLength = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "eventbus_dead_letter_length",
		Help: "Entries in the group's dead-letter stream after the last dead-lettering.",
	}, []string{"group"})
	metricClaimed = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "eventbus_claimed_total",
		Help: "Messages claimed after staying pending longer than the claim idle time.",
	}, labels)
	metricHandleDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "eventbus_handle_duration_seconds",
		Help:    "Time spent in message handlers.",
		Buckets: prometheus.DefBuckets,
	}, labels)
)
