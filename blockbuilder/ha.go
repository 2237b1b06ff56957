package blockbuilder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stratametrics/strata/blockbuilder/election"
	"github.com/stratametrics/strata/internal/forwarding"
	"github.com/stratametrics/strata/validation"
	"github.com/stratametrics/strata/writeerr"
)

// The elections of HA-paired senders this block builder owns (see
// docs/ARCHITECTURE.md, "HA-pair deduplication"), asked by routers.

// electionsFile holds them in the data directory, beside the tenants.
const electionsFile = "ha-elections.json"

// maxElectLabel bounds the cluster and replica names of an ask.
const maxElectLabel = 1024

func openElections(cfg *Config) (*election.Store, error) {
	return election.Open(filepath.Join(cfg.DataDir, electionsFile), cfg.HAMaxClusters, nil)
}

func (b *BlockBuilder) handleElect(w http.ResponseWriter, r *http.Request) {
	var req forwarding.ElectRequest
	err := json.NewDecoder(io.LimitReader(r.Body, 16<<10)).Decode(&req)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: HA election request: %v", writeerr.ErrInvalid, err)
	case req.Cluster == "" || req.Replica == "" || len(req.Cluster) > maxElectLabel || len(req.Replica) > maxElectLabel || len(req.Known) > maxElectLabel:
		err = fmt.Errorf("%w: HA election request: cluster and replica must have 1 to %d bytes", writeerr.ErrInvalid, maxElectLabel)
	case req.TimeoutMs <= 0:
		err = fmt.Errorf("%w: HA election request: timeout_ms must be positive", writeerr.ErrInvalid)
	default:
		err = validation.ValidateTenant(req.Tenant)
	}
	if err == nil {
		err = b.Authorize(r.Header, req.Tenant)
	}
	var d election.Decision
	if err == nil {
		d, err = b.elections.Elect(req.Tenant, req.Cluster, req.Replica, req.Known, time.Duration(req.TimeoutMs)*time.Millisecond)
		if err != nil {
			err = fmt.Errorf("%w: %v", writeerr.ErrUnavailable, err)
		}
	}
	if err != nil {
		if !errors.Is(err, writeerr.ErrInvalid) {
			b.logger.Warn("HA election failed", "tenant", req.Tenant, "cluster", req.Cluster, "err", err)
		}
		http.Error(w, err.Error(), writeerr.HTTPStatus(err))
		return
	}
	if d.Elected {
		kind := "first"
		if d.Failover {
			kind = "failover"
		}
		b.metrics.elections.WithLabelValues(kind).Inc()
		b.logger.Info("HA replica elected", "tenant", req.Tenant, "cluster", req.Cluster, "replica", d.Replica, "failover", d.Failover)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(forwarding.ElectResponse{Replica: d.Replica, ElectedAtMs: d.ElectedAt.UnixMilli()})
}

// electedCollector exports the elected replica of each cluster, bounded
// by STRATA_HA_MAX_CLUSTERS.
type electedCollector struct {
	b    *BlockBuilder
	desc *prometheus.Desc
}

func (c electedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c electedCollector) Collect(ch chan<- prometheus.Metric) {
	c.b.elections.Each(func(tenant, cluster, replica string) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1, tenant, cluster, replica)
	})
}
