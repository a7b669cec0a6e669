package places

import (
	"encoding/json"
	"testing"
)

func TestLegacyDocument(t *testing.T) {
	tests := []struct {
		name    string
		results []json.RawMessage
		want    string
	}{
		{"nil", nil, "{\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\"\n}"},
		{"empty", []json.RawMessage{}, "{\n   \"html_attributions\": [],\n   \"results\": [],\n   \"status\": \"ZERO_RESULTS\"\n}"},
		{
			"results keep order and HTML",
			[]json.RawMessage{json.RawMessage(`{"z": 1, "a": "<b>&</b>", "m": "\u003c"}`), json.RawMessage(`{}`)},
			"{\n   \"html_attributions\": [],\n   \"results\": [\n      {\n         \"z\": 1,\n         \"a\": \"<b>&</b>\",\n         \"m\": \"\\u003c\"\n      },\n      {}\n   ],\n   \"status\": \"OK\"\n}",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := legacyDocument(tt.results)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("document =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
	if _, err := legacyDocument([]json.RawMessage{json.RawMessage(`{"broken"`)}); err == nil {
		t.Error("invalid result JSON encoded without error")
	}
}
