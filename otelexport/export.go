// Package otelexport exports the audit trail over OpenTelemetry
// (docs/telemetry.md): every committed record as an OTLP log record, and
// the records of a session's traces as spans, with the records' own trace
// and span ids, so the tree a collector shows is the tree 'ringlet audit
// trace' prints. Provider requests follow the GenAI semantic conventions
// (chat spans), the tool calls their answers asked for are execute_tool
// spans.
//
// Export never holds up the daemon: Export only queues, a bounded queue
// drops what does not fit (counted in ringlet_otel_dropped_total), and
// one goroutine turns records into spans and logs and sends them in
// batches with a deadline.
package otelexport

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/neullabs/ringlet/audit"
)

// Content modes (otel.content).
const (
	ContentDigests = "digests"
	ContentFull    = "full"
)

// Defaults of Options.
const (
	DefaultQueue         = 4096
	DefaultBatch         = 512
	DefaultExportTimeout = 10 * time.Second
	// DefaultLinger is how long the worker waits for more records before
	// it sends a batch that is not full: one export call per record
	// would cost the machine more than the records are worth.
	DefaultLinger = 500 * time.Millisecond
	// errorInterval is how often a failing export is logged.
	errorInterval = time.Minute
)

// Options configure an Exporter. Spans and Logs are where batches go
// (NewOTLP builds them for a collector; tests give their own).
type Options struct {
	Spans sdktrace.SpanExporter
	Logs  sdklog.Exporter
	// Content is ContentDigests (the default) or ContentFull.
	Content string
	// Version is service.version.
	Version string
	// Cost prices a provider request's tokens; nil leaves them unpriced.
	Cost audit.CostFunc
	// Queue bounds the records waiting for export; Batch bounds one
	// export call. ExportTimeout bounds one call of each exporter.
	Queue, Batch  int
	ExportTimeout time.Duration
	// Linger is how long a batch that is not full waits for more.
	Linger time.Duration
	Logger *slog.Logger
}

// Exporter queues committed audit records and exports them.
type Exporter struct {
	opts    Options
	queue   chan audit.Record
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	closed  atomic.Bool
	sendMu  sync.RWMutex // Export holds it shared; Shutdown exclusively, to close queue
	tracer  trace.Tracer
	logger  otellog.Logger
	tp      *sdktrace.TracerProvider
	lp      *sdklog.LoggerProvider
	spans   *collect[sdktrace.ReadOnlySpan]
	logs    *collect[sdklog.Record]
	ids     *fixedIDs
	uses    toolUses
	open    openCalls
	dropped *prometheus.CounterVec
	errs    errorLog
}

// New starts an Exporter; Shutdown stops it.
func New(opts Options) (*Exporter, error) {
	if opts.Spans == nil || opts.Logs == nil {
		return nil, errors.New("otel export: no exporter")
	}
	if opts.Content == "" {
		opts.Content = ContentDigests
	}
	if opts.Content != ContentDigests && opts.Content != ContentFull {
		return nil, errors.New("otel export: content must be digests or full")
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	if opts.Linger <= 0 {
		opts.Linger = DefaultLinger
	}
	if opts.ExportTimeout <= 0 {
		opts.ExportTimeout = DefaultExportTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "ringlet"), attribute.String("service.version", opts.Version))
	e := &Exporter{
		opts:  opts,
		queue: make(chan audit.Record, opts.Queue),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		spans: &collect[sdktrace.ReadOnlySpan]{},
		logs:  &collect[sdklog.Record]{},
		ids:   &fixedIDs{},
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_otel_dropped_total",
			Help: "Audit records not exported over OpenTelemetry, by reason: queue_full (the export queue was full: the collector is slow or down) or export_failed (the collector refused them or could not be reached).",
		}, []string{"reason"}),
		errs: errorLog{log: opts.Logger},
	}
	for _, r := range []string{"queue_full", "export_failed"} {
		e.dropped.WithLabelValues(r)
	}
	// The providers only build spans and log records, with the ids the
	// records carry; the worker sends what they collect in one batch.
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithIDGenerator(e.ids),
		sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(spanCollector{e.spans}))
	e.lp = sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(logCollector{e.logs}))
	e.tracer = e.tp.Tracer("github.com/neullabs/ringlet/audit")
	e.logger = e.lp.Logger("github.com/neullabs/ringlet/audit")
	go e.run()
	return e, nil
}

// Collectors are the exporter's metrics.
func (e *Exporter) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.dropped}
}

// Export queues committed records without waiting: what does not fit in
// the queue is dropped and counted.
func (e *Exporter) Export(recs []audit.Record) {
	if e == nil {
		return
	}
	e.sendMu.RLock()
	defer e.sendMu.RUnlock()
	if e.closed.Load() {
		e.dropped.WithLabelValues("queue_full").Add(float64(len(recs)))
		return
	}
	for i := range recs {
		select {
		case e.queue <- recs[i]:
		default:
			e.dropped.WithLabelValues("queue_full").Inc()
		}
	}
}

// Shutdown stops taking records and exports those queued, until ctx ends;
// what is left then is dropped.
func (e *Exporter) Shutdown(ctx context.Context) error {
	if e == nil {
		return nil
	}
	e.sendMu.Lock()
	if !e.closed.Swap(true) {
		close(e.queue)
	}
	e.sendMu.Unlock()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			e.stopped.Do(func() { close(e.stop) })
		case <-stopped:
		}
	}()
	select {
	case <-e.done:
	case <-ctx.Done():
		<-e.done // the worker returns once its export call sees ctx end
	}
	close(stopped)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	return errors.Join(e.opts.Spans.Shutdown(sctx), e.opts.Logs.Shutdown(sctx))
}

// run is the worker: it takes what is queued, up to a batch, and exports
// it; after Shutdown it drains the queue, unless told to stop.
func (e *Exporter) run() {
	defer close(e.done)
	batch := make([]audit.Record, 0, e.opts.Batch)
	for {
		r, ok := <-e.queue
		if !ok {
			// The calls still waiting for their result go as they are.
			e.open.expire(time.Time{}, true)
			if spans := e.spans.take(); len(spans) > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), e.opts.ExportTimeout)
				_ = e.opts.Spans.ExportSpans(ctx, spans) // shutting down: nothing to retry
				cancel()
			}
			return
		}
		batch = append(batch[:0], r)
		linger := time.NewTimer(e.opts.Linger)
	more:
		for len(batch) < e.opts.Batch {
			select {
			case r, ok := <-e.queue:
				if !ok {
					break more // shutting down: what is queued goes now
				}
				batch = append(batch, r)
			case <-linger.C:
				break more
			case <-e.stop:
				break more
			}
		}
		linger.Stop()
		select {
		case <-e.stop:
			e.dropped.WithLabelValues("export_failed").Add(float64(len(batch) + len(e.queue)))
			for range e.queue { //nolint:revive // drains what Shutdown gave up on
			}
			return
		default:
		}
		e.send(batch)
	}
}

// send builds the batch's spans and logs and exports them.
func (e *Exporter) send(batch []audit.Record) {
	for i := range batch {
		e.build(&batch[i])
	}
	e.open.expire(time.Now(), false)
	spans, logs := e.spans.take(), e.logs.take()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.ExportTimeout)
	defer cancel()
	go func() {
		select {
		case <-e.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var errs []error
	if len(spans) > 0 {
		if err := e.opts.Spans.ExportSpans(ctx, spans); err != nil {
			errs = append(errs, err)
		}
	}
	if len(logs) > 0 {
		if err := e.opts.Logs.Export(ctx, logs); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		e.dropped.WithLabelValues("export_failed").Add(float64(len(batch)))
		e.errs.report(err, len(batch))
	}
}

// collect gathers what a provider produces while the worker builds a
// batch (only the worker touches it, but the SDK's types do not say so).
type collect[T any] struct {
	mu  sync.Mutex
	got []T
}

func (c *collect[T]) add(v T) {
	c.mu.Lock()
	c.got = append(c.got, v)
	c.mu.Unlock()
}

func (c *collect[T]) take() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.got
	c.got = nil
	return out
}

type spanCollector struct {
	c *collect[sdktrace.ReadOnlySpan]
}

func (spanCollector) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (s spanCollector) OnEnd(sp sdktrace.ReadOnlySpan)                { s.c.add(sp) }
func (spanCollector) Shutdown(context.Context) error                  { return nil }
func (spanCollector) ForceFlush(context.Context) error                { return nil }

type logCollector struct{ c *collect[sdklog.Record] }

func (l logCollector) OnEmit(_ context.Context, r *sdklog.Record) error {
	l.c.add(r.Clone())
	return nil
}
func (logCollector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (logCollector) Shutdown(context.Context) error                         { return nil }
func (logCollector) ForceFlush(context.Context) error                       { return nil }

// fixedIDs gives the span being built the ids of its record: the worker
// sets them before each span it starts.
type fixedIDs struct {
	mu    sync.Mutex
	trace trace.TraceID
	span  trace.SpanID
}

func (f *fixedIDs) set(t trace.TraceID, s trace.SpanID) {
	f.mu.Lock()
	f.trace, f.span = t, s
	f.mu.Unlock()
}

func (f *fixedIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.trace, f.span
}

func (f *fixedIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.span
}

// toolUses remembers the tool calls provider answers asked for, by the
// span each got, so the tool.call records under them (which carry no id
// of their own) get gen_ai.tool.call.id. Only the worker uses it; the
// oldest go first past maxToolUses.
type toolUses struct {
	ids   map[string]string
	order []string
}

const maxToolUses = 4096

func (u *toolUses) add(span, id string) {
	if u.ids == nil {
		u.ids = map[string]string{}
	}
	if _, ok := u.ids[span]; ok {
		return
	}
	if len(u.order) >= maxToolUses {
		delete(u.ids, u.order[0])
		u.order = u.order[1:]
	}
	u.ids[span] = id
	u.order = append(u.order, span)
}

// errorLog logs a failing export once per errorInterval, with how many
// records were lost since the last line. The error is the exporter's,
// which names the endpoint and never a header's value.
type errorLog struct {
	log  *slog.Logger
	mu   sync.Mutex
	last time.Time
	lost int
}

func (l *errorLog) report(err error, lost int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost += lost
	now := time.Now()
	if !l.last.IsZero() && now.Sub(l.last) < errorInterval {
		return
	}
	l.log.Warn("OpenTelemetry export failed; records are dropped until the collector answers", "err", err, "records_lost", l.lost)
	l.last, l.lost = now, 0
}
