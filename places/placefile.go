package places

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// place is one entry of a places file: the place's own JSON, in the shape of
// a Nearby Search (legacy) result, and where it is.
type place struct {
	raw      json.RawMessage
	lat, lng float64
}

// parsePlaces parses a places file: either an object whose "results" array
// holds the places, like a Nearby Search (legacy) response, or an array of
// places. Each place is an object with a geometry.location of lat and lng
// in degrees. Places are numbered from 1 in errors.
func parsePlaces(data []byte) ([]place, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("file is empty")
	}

	var items []json.RawMessage
	switch trimmed[0] {
	case '[':
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("decoding JSON: %w", err)
		}
	case '{':
		var doc struct {
			Results *[]json.RawMessage `json:"results"`
		}
		if err := json.Unmarshal(trimmed, &doc); err != nil {
			return nil, fmt.Errorf("decoding JSON: %w", err)
		}
		if doc.Results == nil {
			return nil, errors.New(`top-level object has no "results" array`)
		}
		items = *doc.Results
	default:
		if !json.Valid(trimmed) {
			return nil, errors.New("file is not valid JSON")
		}
		return nil, errors.New(`file holds neither an array of places nor an object with a "results" array`)
	}

	places := make([]place, 0, len(items))
	for i, item := range items {
		p, err := parsePlace(item)
		if err != nil {
			return nil, fmt.Errorf("place #%d: %w", i+1, err)
		}
		places = append(places, p)
	}
	return places, nil
}

// parsePlace parses one place of a places file.
func parsePlace(raw json.RawMessage) (place, error) {
	if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return place{}, errors.New("is not a JSON object")
	}
	var p struct {
		Geometry *struct {
			Location *struct {
				Lat *float64 `json:"lat"`
				Lng *float64 `json:"lng"`
			} `json:"location"`
		} `json:"geometry"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return place{}, fmt.Errorf("decoding geometry.location: %w", err)
	}
	switch {
	case p.Geometry == nil || p.Geometry.Location == nil:
		return place{}, errors.New("has no geometry.location")
	case p.Geometry.Location.Lat == nil:
		return place{}, errors.New("has no geometry.location.lat")
	case p.Geometry.Location.Lng == nil:
		return place{}, errors.New("has no geometry.location.lng")
	}
	lat, lng := *p.Geometry.Location.Lat, *p.Geometry.Location.Lng
	if math.Abs(lat) > 90 {
		return place{}, fmt.Errorf("geometry.location.lat %v is not within [-90, 90]", lat)
	}
	if math.Abs(lng) > 180 {
		return place{}, fmt.Errorf("geometry.location.lng %v is not within [-180, 180]", lng)
	}
	return place{raw: raw, lat: lat, lng: lng}, nil
}
