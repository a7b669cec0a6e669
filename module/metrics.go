package module

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/protocol"
)

const metricsNamespace = "caddy_herd"

// The histograms live as long as the process, so that they survive reloads;
// the counters and gauges are read from the running node at scrape time.
// Each config registers them in its own registry, which Caddy serves at the
// admin endpoint's /metrics.
var (
	placesLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "places_request_duration_seconds",
		Help:    "Latency of the requests sent to the places provider, by provider; answers shared or cached are not requests.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"provider"})
	iamatDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "iamat_duration_seconds",
		Help:    "Time from the read that brought an IAMAT to its reply being formatted: parse, store and format it, after the lines of the same read before it.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
	})
	fsyncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "storage_fsync_duration_seconds",
		Help:    "Duration of each fsync of the table's log on disk.",
		Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10),
	})
	snapshotDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: metricsNamespace, Name: "storage_snapshot_duration_seconds",
		Help:    "Duration of each snapshot of the table written to disk.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})
	collectorsOnce sync.Once
	collectors     []prometheus.Collector
)

// registerMetrics adds the herd's collectors to a config's registry. A
// collector already there (a second provisioning in the same config) is
// kept, so that registration never fails on a reload.
func registerMetrics(reg *prometheus.Registry) error {
	if reg == nil {
		return nil
	}
	collectorsOnce.Do(func() {
		collectors = []prometheus.Collector{placesLatency, iamatDuration, fsyncDuration, snapshotDuration, nodeCollector{}}
	})
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if !errors.As(err, &already) {
				return err
			}
		}
	}
	return nil
}

// nodeCollector reports the running node's counters and link states.
type nodeCollector struct{}

var (
	messagesDesc = prometheus.NewDesc(metricsNamespace+"_messages_total",
		"Messages received, by command and result (ok or invalid).", []string{"command", "result"}, nil)
	rejectedDesc = prometheus.NewDesc(metricsNamespace+"_rejected_total",
		"AT lines refused because the connection is not a peer's under peer_auth, by reason: address, no_certificate, untrusted_certificate or unknown_name.", []string{"reason"}, nil)
	recordsDesc = prometheus.NewDesc(metricsNamespace+"_records_total",
		"Records offered to the table, by outcome: applied (newer) or stale (dropped).", []string{"outcome"}, nil)
	placesDesc = prometheus.NewDesc(metricsNamespace+"_places_requests_total",
		"WHATSAT places queries, by provider and outcome (ok or error), whether or not they needed a request to the provider.", []string{"provider", "outcome"}, nil)
	placesUpstreamDesc = prometheus.NewDesc(metricsNamespace+"_places_upstream_requests_total",
		"Requests sent to the places provider, by provider.", []string{"provider"}, nil)
	placesSavedDesc = prometheus.NewDesc(metricsNamespace+"_places_requests_saved_total",
		"Places queries answered without a request of their own to the provider, by provider and reason: coalesced (shared an identical request in flight) or cached.", []string{"provider", "reason"}, nil)
	limitedDesc = prometheus.NewDesc(metricsNamespace+"_limited_total",
		"Connections closed, and WHATSATs answered `?`, by the limit that refused them: connections_per_ip, messages_per_ip, whatsat_per_ip or whatsat_global.", []string{"limit"}, nil)
	trackedIPsDesc = prometheus.NewDesc(metricsNamespace+"_tracked_ips",
		"Client IPs whose per-IP limits state is kept: those with a connection open, and those whose buckets are still refilling.", nil, nil)
	clientsDesc = prometheus.NewDesc(metricsNamespace+"_clients",
		"Clients in the table.", nil, nil)
	recordBytesDesc = prometheus.NewDesc(metricsNamespace+"_record_bytes",
		"Bytes of memory the table's records take, most of it outside Go's heap, which go_memstats does not count.", nil, nil)
	storageWrittenDesc = prometheus.NewDesc(metricsNamespace+"_storage_written_bytes_total",
		"Bytes written to the table's log and snapshots on disk.", nil, nil)
	storageDiskDesc = prometheus.NewDesc(metricsNamespace+"_storage_disk_bytes",
		"Bytes the table's storage directory takes on disk.", nil, nil)
	storageRecordsDesc = prometheus.NewDesc(metricsNamespace+"_storage_records",
		"Records on disk: in the last snapshot and in the log after it.", nil, nil)
	storageSnapshotDesc = prometheus.NewDesc(metricsNamespace+"_storage_last_snapshot_timestamp_seconds",
		"When the last snapshot of the table was written, in Unix seconds; 0 before the first.", nil, nil)
	storageFailingDesc = prometheus.NewDesc(metricsNamespace+"_storage_failing",
		"Whether writing or syncing the table's log fails and is being retried (1) or not (0); connections wait meanwhile.", nil, nil)
	peerUpDesc = prometheus.NewDesc(metricsNamespace+"_peer_up",
		"Whether the link to a peer is up (1) or down (0).", []string{"peer"}, nil)
	peerQueueDesc = prometheus.NewDesc(metricsNamespace+"_peer_queue_length",
		"Records waiting to be sent to a peer.", []string{"peer"}, nil)
	peerSentDesc = prometheus.NewDesc(metricsNamespace+"_floods_sent_total",
		"Records written to a peer's link.", []string{"peer"}, nil)
	peerConnectsDesc = prometheus.NewDesc(metricsNamespace+"_peer_connects_total",
		"Times the link to a peer came up.", []string{"peer"}, nil)
)

func (nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{messagesDesc, rejectedDesc, recordsDesc, placesDesc, placesUpstreamDesc, placesSavedDesc, limitedDesc, trackedIPsDesc, clientsDesc, recordBytesDesc,
		storageWrittenDesc, storageDiskDesc, storageRecordsDesc, storageSnapshotDesc, storageFailingDesc, peerUpDesc, peerQueueDesc, peerSentDesc, peerConnectsDesc} {
		ch <- d
	}
}

func (nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := runningNode()
	if n == nil {
		return
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for cmd := range commandCount {
		name := protocol.Command(cmd).String()
		counter(messagesDesc, n.stats.messages[cmd][resultOK].Load(), name, "ok")
		counter(messagesDesc, n.stats.messages[cmd][resultInvalid].Load(), name, "invalid")
	}
	for r := admitted + 1; r < rejectionCount; r++ {
		counter(rejectedDesc, n.stats.rejected[r].Load(), r.String())
	}
	counter(recordsDesc, n.stats.applied.Load(), "applied")
	counter(recordsDesc, n.stats.stale.Load(), "stale")
	if p := n.places.Load(); p != nil {
		counter(placesDesc, n.stats.placesOK.Load(), p.name, "ok")
		counter(placesDesc, n.stats.placesFailed.Load(), p.name, "error")
		counter(placesUpstreamDesc, n.stats.placesUpstream.requests.Load(), p.name)
		counter(placesSavedDesc, n.stats.placesUpstream.coalesced.Load(), p.name, "coalesced")
		counter(placesSavedDesc, n.stats.placesUpstream.cached.Load(), p.name, "cached")
	}
	for l := range limits.KindCount {
		counter(limitedDesc, n.clients.limited[l].Load(), l.String())
	}
	gauge(trackedIPsDesc, float64(n.clients.ips.Tracked()))
	gauge(clientsDesc, float64(n.store.Len()))
	gauge(recordBytesDesc, float64(n.store.RecordBytes()))
	if st, written, ok := n.storageStats(); ok {
		counter(storageWrittenDesc, written)
		gauge(storageDiskDesc, float64(st.DiskBytes))
		gauge(storageRecordsDesc, float64(st.Records))
		last := 0.0
		if !st.LastSnapshot.IsZero() {
			last = float64(st.LastSnapshot.UnixNano()) / 1e9
		}
		gauge(storageSnapshotDesc, last)
		failing := 0.0
		if st.Error != "" {
			failing = 1
		}
		gauge(storageFailingDesc, failing)
	}
	for _, l := range *n.links.Load() {
		st := l.Status()
		up := 0.0
		if st.Up {
			up = 1
		}
		gauge(peerUpDesc, up, st.Name)
		gauge(peerQueueDesc, float64(st.Pending), st.Name)
		counter(peerSentDesc, st.Sent, st.Name)
		counter(peerConnectsDesc, st.Connects, st.Name)
	}
}
