package places

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Statuses of a Nearby Search (legacy) response.
const (
	statusOK          = "OK"
	statusZeroResults = "ZERO_RESULTS"
)

// legacyResponse is a Nearby Search (legacy) response, fields in Google's
// order.
type legacyResponse struct {
	HTMLAttributions []string          `json:"html_attributions"`
	Results          []json.RawMessage `json:"results"`
	Status           string            `json:"status"`
}

// legacyDocument encodes results as a Nearby Search (legacy) response,
// indented with three spaces as Google indents it. Each result keeps its own
// key order; HTML in it is not escaped.
func legacyDocument(results []json.RawMessage) ([]byte, error) {
	doc := legacyResponse{
		HTMLAttributions: []string{},
		Results:          results,
		Status:           statusOK,
	}
	if len(results) == 0 {
		doc.Results = []json.RawMessage{}
		doc.Status = statusZeroResults
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "   ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding places response: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
