package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"

	"github.com/caddy-herd/caddy-herd/internal/fakeplaces"
)

// requestsPath is where the fake provider tells how many requests it has
// answered; requests to it are not counted.
const requestsPath = "/herdload/requests"

// runPlaces serves a fake Google Places provider: Nearby Search (legacy)
// answered in Google's own format with a fixed set of places, for a herd
// server's `places google_legacy { endpoint ... }`, so that WHATSAT can be
// measured without Google. GET /herdload/requests answers
// {"requests": <places requests answered>}.
func runPlaces(args []string) error {
	fs := flag.NewFlagSet("places", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:18080", "where to listen")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	fmt.Printf("places provider on http://%s key=%s\n", ln.Addr(), fakeplaces.APIKey)
	return http.Serve(ln, placesHandler(fakeplaces.New()))
}

// placesHandler serves fake's answers and the count of requests it got.
func placesHandler(fake *fakeplaces.Server) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", fake)
	mux.HandleFunc("GET "+requestsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]int{"requests": fake.Requests()})
	})
	return mux
}
