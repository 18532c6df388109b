// peer_go: the seed's endpoints as a Go programmer would write them, as a
// peer of taskpoold in bench/run.  Standard library only: net/http, one
// goroutine per task (even a zero-length one: that is the comparison),
// gathered over channels; CPU jobs are goroutines too, which the runtime
// spreads over GOMAXPROCS threads.
//
//	go build -o peer_go . && ./peer_go PORT	(listens on 127.0.0.1:PORT)
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

const (
	segment  = 32768     // numbers per sieve segment: fits in L1
	nDefault = 30000000  // 1,857,859 primes, ~50 ms on one core
	nMax     = 100000000 // the range count_primes.c accepts
)

// smallPrimes returns the primes up to limit, by a plain sieve.
func smallPrimes(limit int) []int {
	composite := make([]bool, limit+1)
	var primes []int
	for i := 2; i <= limit; i++ {
		if composite[i] {
			continue
		}
		primes = append(primes, i)
		for j := i * i; j <= limit; j += i {
			composite[j] = true
		}
	}
	return primes
}

// countSegment counts the primes in [low, low+len(mark)).
func countSegment(low int, primes []int, mark []byte) int {
	n := len(mark)
	for i := range mark {
		mark[i] = 0
	}
	for _, p := range primes {
		if p*p >= low+n {
			break
		}
		start := (low + p - 1) / p * p
		if start < p*p {
			start = p * p
		}
		for i := start - low; i < n; i += p {
			mark[i] = 1
		}
	}
	found := 0
	for i, m := range mark {
		if m == 0 && low+i >= 2 {
			found++
		}
	}
	return found
}

type primeCount struct {
	N      int `json:"n"`
	Primes int `json:"primes"`
}

// countPrimes is examples/plugins/count_primes.c's segmented sieve.
func countPrimes(n int) primeCount {
	primes := smallPrimes(10000)
	var mark [segment]byte
	total := 0
	for low := 0; low <= n; low += segment {
		l := n - low + 1
		if l > segment {
			l = segment
		}
		total += countSegment(low, primes, mark[:l])
	}
	return primeCount{N: n, Primes: total}
}

// task sleeps for d, then sends result.
func task(d time.Duration, result string) <-chan string {
	c := make(chan string, 1)
	go func() {
		if d > 0 {
			time.Sleep(d)
		}
		c <- result
	}()
	return c
}

func cpuTask(n int) <-chan primeCount {
	c := make(chan primeCount, 1)
	go func() { c <- countPrimes(n) }()
	return c
}

func reply(w http.ResponseWriter, status int, v interface{}) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// paramN reads ?n= (default nDefault); false after answering 400.
func paramN(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("n")
	if s == "" {
		return nDefault, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > nMax {
		reply(w, http.StatusBadRequest, map[string]string{
			"error": fmt.Sprintf("n must be an integer from 1 to %d", nMax)})
		return 0, false
	}
	return n, true
}

func tasks(w http.ResponseWriter, r *http.Request) {
	a, b := task(time.Second, "Task 1 done"), task(2*time.Second, "Task 2 done")
	reply(w, http.StatusOK, map[string][]string{"results": {<-a, <-b}})
}

func runTasks(w http.ResponseWriter, r *http.Request) {
	first := task(time.Second, "First result")
	task(5*time.Second, "Second result") // detached: nobody reads it
	task(3*time.Second, "Third result")
	reply(w, http.StatusOK, map[string]string{"result": <-first})
}

func tasksZero(w http.ResponseWriter, r *http.Request) {
	a, b := task(0, "Task 1 done"), task(0, "Task 2 done")
	reply(w, http.StatusOK, map[string][]string{"results": {<-a, <-b}})
}

func tasksCPU(w http.ResponseWriter, r *http.Request) {
	n, ok := paramN(w, r)
	if !ok {
		return
	}
	a, b := cpuTask(n), cpuTask(n)
	reply(w, http.StatusOK, map[string][]primeCount{"results": {<-a, <-b}})
}

func cpuOne(w http.ResponseWriter, r *http.Request) {
	n, ok := paramN(w, r)
	if !ok {
		return
	}
	reply(w, http.StatusOK, map[string]primeCount{"result": <-cpuTask(n)})
}

// getOnly serves h for GET and HEAD, and answers 405 to other methods.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: peer_go PORT")
		os.Exit(64)
	}
	port, err := strconv.Atoi(os.Args[1])
	if err != nil || port < 1 || port > 65535 {
		fmt.Fprintln(os.Stderr, "peer_go: PORT must be 1..65535")
		os.Exit(64)
	}
	mux := http.NewServeMux() // patterns without a trailing / match exactly
	mux.HandleFunc("/", http.NotFound)
	mux.HandleFunc("/tasks", getOnly(tasks))
	mux.HandleFunc("/run-tasks", getOnly(runTasks))
	mux.HandleFunc("/tasks-zero", getOnly(tasksZero))
	mux.HandleFunc("/tasks-cpu", getOnly(tasksCPU))
	mux.HandleFunc("/cpu-one", getOnly(cpuOne))
	srv := &http.Server{
		Addr:              "127.0.0.1:" + strconv.Itoa(port),
		Handler:           mux,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          log.New(os.Stderr, "peer_go: ", 0),
	}

	ctx, stop := signal.NotifyContext(context.Background(),
		syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.ListenAndServe() }()
	select {
	case err := <-done: // could not listen
		fmt.Fprintln(os.Stderr, "peer_go:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	// Let requests in flight finish (the longest waits 2 s), then go.
	grace, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if srv.Shutdown(grace) != nil {
		srv.Close()
	}
}
