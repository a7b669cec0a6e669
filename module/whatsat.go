package module

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/caddy-herd/caddy-herd/module/limits"
	"github.com/caddy-herd/caddy-herd/places"
	"github.com/caddy-herd/caddy-herd/protocol"
)

// Why a valid WHATSAT is answered `? <line>`, besides a budget
// (limits.OverBudget) or the provider's own error.
var (
	errUnknownClient    = errors.New("WHATSAT for an unknown client")
	errNoPlacesProvider = errors.New("WHATSAT with no places provider configured")
	errBeyondLimits     = errors.New("WHATSAT beyond the configured limits")
)

// whatsat answers a valid WHATSAT: the client's stored AT line, then the
// provider's places JSON cut to the bound. When it cannot, it appends
// nothing and returns why, for handleLine to answer `? <line>`; it logs
// and counts the failures an operator acts on.
func (c *session) whatsat() error {
	node := c.h.node
	record, ok := node.store.Get(c.fields[protocol.WHATSATClient])
	if !ok {
		if c.debug {
			c.log.Debug(errUnknownClient.Error(), zap.ByteString("client", c.fields[protocol.WHATSATClient]))
		}
		return errUnknownClient
	}
	provider := node.provider()
	if provider == nil {
		c.log.Warn(errNoPlacesProvider.Error())
		return errNoPlacesProvider
	}
	radiusKm, _ := protocol.ParseRadius(c.fields[protocol.WHATSATRadius])
	bound, _ := protocol.ParseBound(c.fields[protocol.WHATSATBound])
	if limits := node.limits.Load(); limits != nil && (radiusKm > limits.radiusKm || bound > limits.bound) {
		if c.debug {
			c.log.Debug(errBeyondLimits.Error(), zap.Float64("max_radius_km", limits.radiusKm), zap.Int("max_bound", limits.bound))
		}
		return errBeyondLimits
	}
	lat, lng, _ := protocol.ParseLocation([]byte(strings.Split(record.Line(), " ")[protocol.ATLocation]))

	// The provider may take seconds: send the replies already due first.
	// The answer may be shared with other WHATSATs and the cache, so it is
	// only ever read.
	c.flush()
	body, err := c.askPlaces(provider.Provider, places.Query{
		Latitude:     lat,
		Longitude:    lng,
		RadiusMeters: radiusKm * 1000,
		MaxResults:   bound,
	})
	if over := (limits.OverBudget{}); errors.As(err, &over) {
		node.refuse(over.Limit, c.log, "WHATSAT over its places budget; answered `?`")
		return err
	}
	if err != nil {
		node.stats.placesFailed.Add(1)
		c.log.Warn("places request failed", zap.String("provider", provider.name), zap.Error(err))
		return err
	}
	node.stats.placesOK.Add(1)
	start := len(c.out)
	c.out = append(c.out, record.Line()...)
	c.out = append(c.out, '\n')
	if c.out, err = appendPlaces(c.out, body, bound); err != nil {
		c.log.Warn("places answer unusable", zap.Error(err))
		c.out = c.out[:start]
		return err
	}
	c.out = append(c.out, "\n\n"...)
	return nil
}

// appendPlaces appends a places JSON document with its `results` array cut to
// the first bound entries, every run of newlines folded into one and trailing
// newlines removed. The provider's own formatting is kept byte for byte.
func appendPlaces(dst, body []byte, bound int) ([]byte, error) {
	cut, err := cutResults(body, bound)
	if err != nil {
		return dst, err
	}
	cut = bytes.TrimRight(cut, "\n")
	for i := 0; i < len(cut); i++ {
		if cut[i] == '\n' && i > 0 && cut[i-1] == '\n' {
			continue
		}
		dst = append(dst, cut[i])
	}
	return dst, nil
}

// cutResults returns body with the top-level `results` array cut to its
// first bound entries. A document without `results` is returned unchanged.
func cutResults(body []byte, bound int) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("places answer is not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("reading places answer: %w", err)
		}
		if key != "results" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("reading places answer: %w", err)
			}
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return nil, errors.New("places answer: results is not an array")
		}
		ends := []int64{dec.InputOffset()}
		for dec.More() {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("reading places results: %w", err)
			}
			ends = append(ends, dec.InputOffset())
		}
		if bound >= len(ends)-1 {
			return body, nil
		}
		keep, last := ends[bound], ends[len(ends)-1]
		cut := make([]byte, 0, len(body)-int(last-keep))
		cut = append(cut, body[:keep]...)
		return append(cut, body[last:]...), nil
	}
	return body, nil
}
