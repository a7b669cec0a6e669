package places

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// placeAt returns a place in the legacy result shape northwards of
// (lat, lng) by metres.
func placeAt(name string, lat, lng, metres float64) string {
	dLat := metres / earthRadiusMeters * 180 / math.Pi
	return fmt.Sprintf(`{"name": %q, "geometry": {"location": {"lat": %v, "lng": %v}}, "place_id": "offline-%s"}`,
		name, lat+dLat, lng, strings.ToLower(strings.ReplaceAll(name, " ", "-")))
}

func newFile(t *testing.T, content string) *File {
	t.Helper()
	f := &File{Path: writeFile(t, content)}
	mustProvision(t, f)
	return f
}

// resultNames returns the names of the results of a legacy document.
func resultNames(t *testing.T, doc legacyDoc) []string {
	t.Helper()
	var names []string
	for _, r := range doc.Results {
		var p struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(r, &p); err != nil {
			t.Fatal(err)
		}
		names = append(names, p.Name)
	}
	return names
}

func TestFileNearbyFiltersAndOrders(t *testing.T) {
	const lat, lng = 34.0689, -118.4452
	places := []string{
		placeAt("at 100 m", lat, lng, 100),
		placeAt("at 50 m", lat, lng, 50),
		placeAt("at 300 m", lat, lng, 300),
		placeAt("at 10 m", lat, lng, 10),
		placeAt("at 2 km", lat, lng, 2000),
		placeAt("also at 50 m", lat, lng, 50),
		placeAt("south at 200 m", lat, lng, -200),
	}
	content := "[" + strings.Join(places, ",") + "]"
	tests := []struct {
		name      string
		content   string
		radius    float64
		wantNames []string
	}{
		{"within 250 m", content, 250, []string{"at 10 m", "at 50 m", "also at 50 m", "at 100 m", "south at 200 m"}},
		{"within 60 m", content, 60, []string{"at 10 m", "at 50 m", "also at 50 m"}},
		{"within 5 km", content, 5000, []string{"at 10 m", "at 50 m", "also at 50 m", "at 100 m", "south at 200 m", "at 300 m", "at 2 km"}},
		{"results object", `{"results": [` + strings.Join(places, ",") + `], "status": "OK"}`, 60, []string{"at 10 m", "at 50 m", "also at 50 m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFile(t, tt.content)
			body, err := f.Nearby(context.Background(), Query{Latitude: lat, Longitude: lng, RadiusMeters: tt.radius, MaxResults: 3})
			if err != nil {
				t.Fatal(err)
			}
			doc := decodeLegacy(t, body)
			if got := resultNames(t, doc); strings.Join(got, "|") != strings.Join(tt.wantNames, "|") {
				t.Errorf("results %q, want %q", got, tt.wantNames)
			}
			if doc.Status != "OK" {
				t.Errorf("status %q, want OK", doc.Status)
			}
		})
	}
}

func TestFileNearbyCapsAtTwenty(t *testing.T) {
	const lat, lng = 34.0689, -118.4452
	var places []string
	for i := 30; i >= 1; i-- {
		places = append(places, placeAt(fmt.Sprintf("place %02d", i), lat, lng, float64(i)*10))
	}
	f := newFile(t, "["+strings.Join(places, ",")+"]")
	body, err := f.Nearby(context.Background(), Query{Latitude: lat, Longitude: lng, RadiusMeters: 1000, MaxResults: 20})
	if err != nil {
		t.Fatal(err)
	}
	names := resultNames(t, decodeLegacy(t, body))
	if len(names) != 20 || names[0] != "place 01" || names[19] != "place 20" {
		t.Errorf("got %d results %q, want the 20 nearest, nearest first", len(names), names)
	}
}

func TestFileNearbyZeroResults(t *testing.T) {
	f := newFile(t, "["+placeAt("far", 34, -118, 0)+"]")
	body, err := f.Nearby(context.Background(), Query{Latitude: 40.7, Longitude: -74, RadiusMeters: 50000})
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\"\n}"
	if string(body) != want {
		t.Errorf("answer =\n%s\nwant\n%s", body, want)
	}
}

func TestFileKeepsEachPlaceAsWritten(t *testing.T) {
	place := `{"vicinity": "Westwood <Village> & more", "name": "Fox \u0026 Bruin", "rating": 4.50, ` +
		`"geometry": {"viewport": {}, "location": {"lng": -118.4474, "lat": 34.0627}}, "types": ["movie_theater"]}`
	f := newFile(t, `{"results": [`+place+`]}`)
	body, err := f.Nearby(context.Background(), Query{Latitude: 34.0627, Longitude: -118.4474, RadiusMeters: 10})
	if err != nil {
		t.Fatal(err)
	}
	doc := decodeLegacy(t, body)
	if len(doc.Results) != 1 {
		t.Fatalf("got %d results, want 1", len(doc.Results))
	}
	if got, want := compactJSON(t, doc.Results[0]), compactJSON(t, []byte(place)); got != want {
		t.Errorf("result =\n%s\nwant\n%s", got, want)
	}
	if !strings.HasPrefix(string(body), "{\n   \"html_attributions\": [],\n   \"results\": [\n      {\n         \"vicinity\": \"Westwood <Village> & more\",\n") {
		t.Errorf("answer is not indented with three spaces or escapes HTML:\n%s", body)
	}
}

func TestFileLoadErrors(t *testing.T) {
	good := placeAt("good", 34, -118, 0)
	tests := []struct {
		name    string
		content string
		wantErr string
	}{
		{"empty file", "", "file is empty"},
		{"invalid JSON", `{"results": [`, "decoding JSON"},
		{"not JSON", `Royce Hall`, "not valid JSON"},
		{"top-level string", `"Royce Hall"`, `neither an array of places nor an object with a "results" array`},
		{"object without results", `{"places": []}`, `no "results" array`},
		{"results not an array", `{"results": {"name": "x"}}`, "decoding JSON"},
		{"place not an object", `[` + good + `, "Royce Hall"]`, "place #2: is not a JSON object"},
		{"no geometry", `[` + good + `,` + good + `, {"name": "Royce Hall"}]`, "place #3: has no geometry.location"},
		{"no location", `[{"geometry": {"viewport": {}}}]`, "place #1: has no geometry.location"},
		{"no latitude", `[{"geometry": {"location": {"lng": -118}}}]`, "place #1: has no geometry.location.lat"},
		{"no longitude", `[{"geometry": {"location": {"lat": 34}}}]`, "place #1: has no geometry.location.lng"},
		{"latitude as text", `[{"geometry": {"location": {"lat": "34", "lng": -118}}}]`, "place #1: decoding geometry.location"},
		{"latitude out of range", `[{"geometry": {"location": {"lat": 134, "lng": -118}}}]`, "place #1: geometry.location.lat 134"},
		{"longitude out of range", `[{"geometry": {"location": {"lat": 34, "lng": -218}}}]`, "place #1: geometry.location.lng -218"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			err := provision(t, &File{Path: path})
			if err == nil {
				t.Fatal("Provision succeeded, want an error")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name %s and %q", err, path, tt.wantErr)
			}
		})
	}
}

func TestFileProvisionErrors(t *testing.T) {
	if err := provision(t, &File{}); err == nil || err.Error() != "path is required" {
		t.Errorf("without a path: error %v, want \"path is required\"", err)
	}
	missing := filepath.Join(t.TempDir(), "missing.json")
	if err := provision(t, &File{Path: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want one naming %s", err, missing)
	}
	if err := (&File{}).Validate(); err == nil {
		t.Error("Validate succeeded without a path")
	}
}

func TestFilePathPlaceholder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.json"), []byte("["+placeAt("x", 34, -118, 0)+"]"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HERD_TEST_PLACES_DIR", dir)
	f := &File{Path: "{env.HERD_TEST_PLACES_DIR}/p.json"}
	mustProvision(t, f)
	if len(f.places) != 1 {
		t.Errorf("loaded %d places, want 1", len(f.places))
	}
}

// TestExamplePlaces checks the example data file shipped with the project.
func TestExamplePlaces(t *testing.T) {
	f := &File{Path: filepath.Join("..", "examples", "places.json")}
	mustProvision(t, f)
	if len(f.places) < 50 {
		t.Errorf("examples/places.json has %d places, want at least 50", len(f.places))
	}
	names := map[string]bool{}
	ids := map[string]bool{}
	for i, p := range f.places {
		var v struct {
			Name     string   `json:"name"`
			PlaceID  string   `json:"place_id"`
			Types    []string `json:"types"`
			Vicinity string   `json:"vicinity"`
		}
		if err := json.Unmarshal(p.raw, &v); err != nil {
			t.Fatal(err)
		}
		if v.Name == "" || !strings.HasPrefix(v.PlaceID, "offline-") || len(v.Types) == 0 || v.Vicinity == "" {
			t.Errorf("place #%d is incomplete: %+v", i+1, v)
		}
		if names[v.Name] || ids[v.PlaceID] {
			t.Errorf("place #%d repeats %q or %q", i+1, v.Name, v.PlaceID)
		}
		names[v.Name], ids[v.PlaceID] = true, true
		// Every place is within 10 km of Royce Hall.
		if d := distanceMeters(34.07278, -118.44194, p.lat, p.lng); d > 10000 {
			t.Errorf("%s is %.0f m from UCLA", v.Name, d)
		}
	}

	body, err := f.Nearby(context.Background(), Query{Latitude: 34.07278, Longitude: -118.44194, RadiusMeters: 200, MaxResults: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := resultNames(t, decodeLegacy(t, body)); len(got) == 0 || got[0] != "Royce Hall" {
		t.Errorf("nearest places to Royce Hall: %q", got)
	}
}
