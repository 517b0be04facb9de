package mesos

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mesos/mesos-go/api/v1/lib/recordio"
)

// Media types of the v1 APIs (docs/scheduler-http-api.md "Calls").
const (
	mediaProtobuf = "application/x-protobuf"
	mediaJSON     = "application/json"
)

// message is what every mesos-go generated type is: gogo protobuf plus
// ffjson, so one value has both wire forms.
type message interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

// decodeCall reads a call body in the request's Content-Type. Its error is
// the HTTP status the real master and agent answer with: 415 for a type that
// is neither JSON nor protobuf, 400 for a missing type or a body that does
// not parse (src/slave/http.cpp:745-790, src/master/http.cpp:520-560).
func decodeCall(r *http.Request, into message) *httpError {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return &httpError{http.StatusBadRequest, "Expecting 'Content-Type' to be present"}
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return &httpError{http.StatusBadRequest, fmt.Sprintf("Failed to parse 'Content-Type': %v", err)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		return &httpError{http.StatusBadRequest, fmt.Sprintf("Failed to read body: %v", err)}
	}
	switch mt {
	case mediaProtobuf:
		err = into.Unmarshal(body)
	case mediaJSON:
		err = json.Unmarshal(body, into)
	default:
		return &httpError{http.StatusUnsupportedMediaType, fmt.Sprintf("Expecting 'Content-Type' of %s or %s", mediaJSON, mediaProtobuf)}
	}
	if err != nil {
		return &httpError{http.StatusBadRequest, fmt.Sprintf("Failed to parse body into Call: %v", err)}
	}
	return nil
}

// acceptedType picks the stream's message type from the Accept header the way
// the agent and master do: JSON first (an empty or */* Accept means JSON),
// then protobuf, else 406 (src/slave/http.cpp:784-795,
// src/master/http.cpp:565-580). mesos-go sends exactly one type.
func acceptedType(r *http.Request) (string, *httpError) {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return mediaJSON, nil
	}
	var proto bool
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case mediaJSON, "*/*", "application/*":
			return mediaJSON, nil
		case mediaProtobuf:
			proto = true
		}
	}
	if proto {
		return mediaProtobuf, nil
	}
	return "", &httpError{http.StatusNotAcceptable, fmt.Sprintf("Expecting 'Accept' to allow %s or %s", mediaJSON, mediaProtobuf)}
}

// httpError is an HTTP answer other than success, with the body text the
// real daemons send.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(e.code)
	_, _ = io.WriteString(w, e.msg)
}

func encode(mediaType string, m message) ([]byte, error) {
	if mediaType == mediaJSON {
		return json.Marshal(m)
	}
	return m.Marshal()
}

// stream is one subscriber's event stream: a 200 response with the message
// type as Content-Type, chunked (no Content-Length), each event a RecordIO
// record (docs/recordio.md), flushed at once. Sends never block the double:
// events queue until the HTTP handler writes them. Faults may drop,
// duplicate, delay or cut, as a flaky network would.
type stream struct {
	mediaType string
	faults    *Faults

	mu     sync.Mutex
	queue  []queued
	closed bool
	wake   chan struct{}
	done   chan struct{} // closed when the handler has returned
}

type queued struct {
	b     []byte
	delay time.Duration
}

func newStream(mediaType string, f *Faults) *stream {
	return &stream{mediaType: mediaType, faults: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// send queues an event; false when the stream is already closed (the event
// is lost, as on a real connection that went away).
func (s *stream) send(m message) bool {
	b, err := encode(s.mediaType, m)
	if err != nil {
		panic(fmt.Sprintf("mesos double: encode event: %v", err)) // our own message: a bug
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	fate := s.faults.event()
	if fate.cut {
		s.closed = true
		s.poke()
		return false
	}
	if fate.drop {
		return true
	}
	s.queue = append(s.queue, queued{b, fate.delay})
	if fate.dup {
		s.queue = append(s.queue, queued{b, 0})
	}
	s.poke()
	return true
}

func (s *stream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// close ends the stream after what is queued has been written.
func (s *stream) close() {
	s.mu.Lock()
	s.closed = true
	s.poke()
	s.mu.Unlock()
}

// serve writes the stream until it is closed or the client goes away; it
// runs in the SUBSCRIBE handler. extra headers go out with the 200.
func (s *stream) serve(w http.ResponseWriter, r *http.Request, extra http.Header) {
	defer close(s.done)
	for k, v := range extra {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", s.mediaType)
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush() // headers now: mesos-go waits for them (MESOS.md gotcha 3)
	}
	rw := recordio.NewWriter(w)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		closed := s.closed
		s.mu.Unlock()
		for _, e := range q {
			if e.delay > 0 {
				time.Sleep(e.delay)
			}
			if err := rw.WriteFrame(e.b); err != nil {
				s.close()
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if closed && len(q) == 0 {
			return
		}
		select {
		case <-s.wake:
		case <-r.Context().Done():
			s.close()
			return
		}
	}
}

// newUUID is a random RFC 4122 UUID as the 16 raw bytes Mesos puts in
// TaskStatus.uuid.
func newUUID() []byte {
	u := uuid.New()
	return u[:]
}

// validUUID is stout's UUID::fromBytes check: 16 bytes with a known
// version (3rdparty/stout/include/stout/uuid.hpp:49-62).
func validUUID(b []byte) bool {
	u, err := uuid.FromBytes(b)
	if err != nil {
		return false
	}
	return u.Version() >= 1 && u.Version() <= 5
}
