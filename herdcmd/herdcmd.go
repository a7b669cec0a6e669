// Package herdcmd adds `caddy herd` to Caddy's command line: subcommands
// that talk to a herd server (iamat, whatsat) and to its admin API (peers,
// storage, dump).
package herdcmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/caddy-herd/caddy-herd/protocol"
)

// Defaults of the subcommands.
const (
	defaultServer = "127.0.0.1:12000"
	timeout       = 10 * time.Second
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "herd",
		Usage: "<iamat|whatsat|peers|storage|dump> [args]",
		Short: "Talks to a herd server and its admin API",
		Long: `
Talks to a herd server over its line protocol, or reads its state from
Caddy's admin API. Each subcommand exits with a non-zero status when the
server answers "? <line>" or cannot be reached.

  caddy herd iamat   --server 127.0.0.1:12000 <client> <lat> <lng> [--time <posix>]
  caddy herd whatsat --server 127.0.0.1:12000 <client> <radius_km> <bound>
  caddy herd peers   [--address localhost:2019]
  caddy herd storage [--address localhost:2019] [--snapshot]
  caddy herd dump    [--address localhost:2019]
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(iamatCommand(), whatsatCommand(), peersCommand(), storageCommand(), dumpCommand())
		},
	})
}

func iamatCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "iamat <client> <lat> <lng>",
		Short: "Reports a client's location (IAMAT) and prints the AT reply",
		Long: "Sends IAMAT for the client at latitude and longitude in decimal degrees " +
			"(a + sign is added where missing), at the given POSIX time or now. " +
			"Flags go before the client, so that a negative coordinate is not read as a flag.",
		Args: cobra.ExactArgs(3),
	}
	// Flags come first, so that a negative coordinate is not read as one.
	c.Flags().SetInterspersed(false)
	server := c.Flags().String("server", defaultServer, "the herd server's host:port")
	at := c.Flags().String("time", "", "the client time in POSIX seconds (default now)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		location := signed(args[1]) + signed(args[2])
		if !protocol.ValidLocation([]byte(location)) {
			return fmt.Errorf("invalid location %s %s: want decimal degrees, latitude within ±90 and longitude within ±180", args[1], args[2])
		}
		clientTime := *at
		if clientTime == "" {
			now := time.Now()
			clientTime = fmt.Sprintf("%d.%09d", now.Unix(), now.Nanosecond())
		}
		reply, err := exchange(*server, fmt.Sprintf("IAMAT %s %s %s\n", args[0], location, clientTime), false)
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), reply)
		return invalidReply(reply)
	}
	return c
}

func whatsatCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "whatsat <client> <radius_km> <bound>",
		Short: "Asks for places near a client (WHATSAT) and pretty-prints them",
		Args:  cobra.ExactArgs(3),
	}
	server := c.Flags().String("server", defaultServer, "the herd server's host:port")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		reply, err := exchange(*server, fmt.Sprintf("WHATSAT %s %s %s\n", args[0], args[1], args[2]), true)
		if err != nil {
			return err
		}
		if err := invalidReply(reply); err != nil {
			fmt.Fprint(cmd.OutOrStdout(), reply)
			return err
		}
		at, doc, _ := strings.Cut(reply, "\n")
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, []byte(doc), "", "  "); err != nil {
			return fmt.Errorf("reading the places JSON: %w", err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s\n", at, pretty.Bytes())
		return nil
	}
	return c
}

func peersCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "peers",
		Short: "Shows the state of a herd server's peer links",
		Args:  cobra.NoArgs,
	}
	address := c.Flags().String("address", caddy.DefaultAdminListen, "the admin API's host:port")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		body, err := adminGet(*address, "/herd/peers")
		if err != nil {
			return err
		}
		defer body.Close()
		var peers []struct {
			Name      string    `json:"name"`
			Address   string    `json:"address"`
			Up        bool      `json:"up"`
			Since     time.Time `json:"since"`
			LastError string    `json:"last_error"`
			Pending   int       `json:"pending"`
			Connects  int64     `json:"connects"`
			Sent      int64     `json:"records_sent"`
			Exchange  bool      `json:"exchange"`
			CatchUp   *struct {
				After   uint64 `json:"after"`
				Records int64  `json:"records"`
			} `json:"last_catch_up"`
		}
		if err := json.NewDecoder(body).Decode(&peers); err != nil {
			return fmt.Errorf("reading /herd/peers: %w", err)
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PEER\tADDRESS\tSTATE\tSINCE\tPENDING\tSENT\tCONNECTS\tLAST CATCH-UP\tLAST ERROR")
		for _, p := range peers {
			state := "down"
			if p.Up {
				state = "up"
			}
			catchUp := "-"
			switch {
			case p.CatchUp == nil:
			case p.CatchUp.After == 0:
				catchUp = fmt.Sprintf("%d records (whole table)", p.CatchUp.Records)
			default:
				catchUp = fmt.Sprintf("%d records (missed)", p.CatchUp.Records)
			}
			if p.Up && !p.Exchange {
				catchUp += ", classic peer"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", p.Name, p.Address, state,
				p.Since.Local().Format(time.DateTime), p.Pending, p.Sent, p.Connects, catchUp, p.LastError)
		}
		return w.Flush()
	}
	return c
}

func storageCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "storage",
		Short: "Shows where and how a herd server keeps its table on disk",
		Long: "Shows the storage of a herd server: its directory, fsync level, bytes on disk, " +
			"records, last fsync and last snapshot, and how far it knows each peer's records. " +
			"With --snapshot it has the server write a snapshot first.",
		Args: cobra.NoArgs,
	}
	address := c.Flags().String("address", caddy.DefaultAdminListen, "the admin API's host:port")
	snapshot := c.Flags().Bool("snapshot", false, "write a snapshot of the table first")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		var body io.ReadCloser
		var err error
		if *snapshot {
			body, err = adminDo(http.MethodPost, *address, "/herd/storage/snapshot")
		} else {
			body, err = adminGet(*address, "/herd/storage")
		}
		if err != nil {
			return err
		}
		defer body.Close()
		var st struct {
			On                  bool       `json:"on"`
			Epoch               string     `json:"epoch"`
			Seq                 uint64     `json:"seq"`
			Dir                 string     `json:"dir"`
			Fsync               string     `json:"fsync"`
			DiskBytes           int64      `json:"disk_bytes"`
			LogBytes            int64      `json:"log_bytes"`
			Segments            int        `json:"segments"`
			Records             int64      `json:"records"`
			BytesWritten        int64      `json:"bytes_written"`
			Fsyncs              int64      `json:"fsyncs"`
			LastFsync           *time.Time `json:"last_fsync"`
			LastFsyncSeconds    float64    `json:"last_fsync_seconds"`
			LastSnapshot        *time.Time `json:"last_snapshot"`
			LastSnapshotSeconds float64    `json:"last_snapshot_seconds"`
			LastSnapshotRecords int64      `json:"last_snapshot_records"`
			LastSnapshotBytes   int64      `json:"last_snapshot_bytes"`
			Error               string     `json:"error"`
			Cursors             map[string]struct {
				Epoch string `json:"epoch"`
				Seq   uint64 `json:"seq"`
			} `json:"peer_cursors"`
		}
		if err := json.NewDecoder(body).Decode(&st); err != nil {
			return fmt.Errorf("reading /herd/storage: %w", err)
		}
		w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		if !st.On {
			fmt.Fprintln(w, "storage\toff: the table is in memory only")
		} else {
			fmt.Fprintf(w, "directory\t%s\n", st.Dir)
			fmt.Fprintf(w, "fsync\t%s\n", st.Fsync)
			fmt.Fprintf(w, "on disk\t%d bytes, %d of them log in %d segments\n", st.DiskBytes, st.LogBytes, st.Segments)
			fmt.Fprintf(w, "records\t%d\n", st.Records)
			fmt.Fprintf(w, "written\t%d bytes since start\n", st.BytesWritten)
			fmt.Fprintf(w, "last fsync\t%s\n", when(st.LastFsync, fmt.Sprintf("took %.3f ms, %d in all", st.LastFsyncSeconds*1000, st.Fsyncs)))
			fmt.Fprintf(w, "last snapshot\t%s\n", when(st.LastSnapshot, fmt.Sprintf("took %.3f s, %d records, %d bytes", st.LastSnapshotSeconds, st.LastSnapshotRecords, st.LastSnapshotBytes)))
			if st.Error != "" {
				fmt.Fprintf(w, "failing\t%s\n", st.Error)
			}
		}
		fmt.Fprintf(w, "numbering\tepoch %s, last record %d\n", st.Epoch, st.Seq)
		peers := make([]string, 0, len(st.Cursors))
		for p := range st.Cursors {
			peers = append(peers, p)
		}
		sort.Strings(peers)
		for _, p := range peers {
			fmt.Fprintf(w, "knows %s\tup to %d in epoch %s\n", p, st.Cursors[p].Seq, st.Cursors[p].Epoch)
		}
		return w.Flush()
	}
	return c
}

// when formats an optional time with what happened then.
func when(t *time.Time, what string) string {
	if t == nil {
		return "never"
	}
	return t.Local().Format(time.DateTime) + " (" + what + ")"
}

func dumpCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "dump",
		Short: "Prints a herd server's whole client table, one JSON object per line",
		Args:  cobra.NoArgs,
	}
	address := c.Flags().String("address", caddy.DefaultAdminListen, "the admin API's host:port")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		body, err := adminGet(*address, "/herd/clients")
		if err != nil {
			return err
		}
		defer body.Close()
		_, err = io.Copy(cmd.OutOrStdout(), body)
		return err
	}
	return c
}

// signed gives a coordinate the explicit sign the protocol wants.
func signed(coordinate string) string {
	if strings.HasPrefix(coordinate, "+") || strings.HasPrefix(coordinate, "-") {
		return coordinate
	}
	return "+" + coordinate
}

// exchange sends one message and reads its reply: one line, or with
// multiline set, a WHATSAT reply up to its blank line.
func exchange(server, message string, multiline bool) (string, error) {
	conn, err := net.DialTimeout("tcp", server, timeout)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", server, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(conn, message); err != nil {
		return "", fmt.Errorf("sending to %s: %w", server, err)
	}
	r := bufio.NewReader(conn)
	var reply strings.Builder
	for {
		line, err := r.ReadString('\n')
		reply.WriteString(line)
		if err != nil {
			return "", fmt.Errorf("reading the reply from %s: %w", server, err)
		}
		if !multiline || strings.HasPrefix(reply.String(), "? ") || line == "\n" {
			return reply.String(), nil
		}
	}
}

func invalidReply(reply string) error {
	if strings.HasPrefix(reply, "? ") {
		return errors.New("the server answered the message as invalid")
	}
	return nil
}

func adminGet(address, path string) (io.ReadCloser, error) {
	return adminDo(http.MethodGet, address, path)
}

func adminDo(method, address, path string) (io.ReadCloser, error) {
	client := http.Client{Timeout: 5 * time.Minute}
	req, err := http.NewRequest(method, "http://"+address+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the admin API at %s: %w", address, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("admin API %s%s: %s: %s", address, path, resp.Status, bytes.TrimSpace(msg))
	}
	return resp.Body, nil
}
