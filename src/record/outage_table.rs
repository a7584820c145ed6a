//! `intervals/StimulatorOutages`: when a stimulator link was down (port vanished, device reset)
//! until it connected again, or until the session ended.

use hdf5::File;

use super::SessionClock;
use super::column::Column;
use super::h5::{self, H5Result};
use super::loop_records::{LinkEvent, LinkEventKind};

/// The outage table's columns and the outages still open.
pub struct OutageTable {
    id: Column<i64>,
    start_time: Column<f64>,
    stop_time: Column<f64>,
    output: Column<u8>,
    reconnected: Column<u8>,
    /// Host ns each output went down, while it is down.
    open_since: Vec<Option<u64>>,
}

impl OutageTable {
    /// Creates the empty table for the named outputs.
    pub fn create(file: &File, outputs: &[String]) -> H5Result<Self> {
        let intervals = file.group("/intervals")?;
        let t = h5::typed_group(&intervals, "StimulatorOutages", "TimeIntervals", "core")?;
        h5::attr_str(
            &t,
            "description",
            "Times a stimulator link was down: start_time = behavd saw the port vanish or hang \
             up (or the session start, for an optional output that was not connected when the \
             session started), stop_time = the link connected again (or the session ended, \
             reconnected = 0). Triggers decided meanwhile are in StimulusTriggers with status 5 \
             (link down) or 7 (stale).",
        )?;
        h5::attr_str_array(
            &t,
            "colnames",
            &["start_time", "stop_time", "output", "reconnected"],
        )?;
        let column = |name: &str, description: &str| -> H5Result<hdf5::Dataset> {
            let ds = h5::extensible::<f64>(&t, name, &[], 64, None)?;
            h5::vector_data(&ds, description)?;
            Ok(ds)
        };
        let id = h5::extensible::<i64>(&t, "id", &[], 64, None)?;
        h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
        let output = h5::extensible::<u8>(&t, "output", &[], 64, None)?;
        h5::vector_data(
            &output,
            &format!("Stimulator output, index into [{}]", outputs.join(", ")),
        )?;
        let reconnected = h5::extensible::<u8>(&t, "reconnected", &[], 64, None)?;
        h5::vector_data(
            &reconnected,
            "1 = the link came back during the session, 0 = still down at the end",
        )?;
        Ok(Self {
            id: Column::new(id, &[], 4),
            start_time: Column::new(
                column("start_time", "Start time of epoch, in seconds")?,
                &[],
                4,
            ),
            stop_time: Column::new(
                column("stop_time", "Stop time of epoch, in seconds")?,
                &[],
                4,
            ),
            output: Column::new(output, &[], 4),
            reconnected: Column::new(reconnected, &[], 4),
            open_since: vec![None; outputs.len()],
        })
    }

    /// Follows the link's connection events: a disconnection opens an outage, the next
    /// connection of the same output closes it.
    pub fn observe(&mut self, e: &LinkEvent, clock: &SessionClock) {
        let Some(open) = self.open_since.get_mut(e.output as usize) else {
            return;
        };
        let at = if e.host_ns > 0 {
            e.host_ns
        } else {
            e.received_ns
        };
        if e.kind == LinkEventKind::Disconnected as u8 {
            open.get_or_insert(at);
        } else if e.kind == LinkEventKind::Connected as u8
            && let Some(since) = open.take()
        {
            self.push(e.output, since, at, true, clock);
        }
    }

    /// Opens an outage of `output` at `at_ns` (an output that was not connected when the
    /// session started: the outage runs from the session start).
    pub fn open_at(&mut self, output: u8, at_ns: u64) {
        if let Some(open) = self.open_since.get_mut(output as usize) {
            open.get_or_insert(at_ns);
        }
    }

    /// Closes the outages still open at the end of the session.
    pub fn close_open(&mut self, end_ns: u64, clock: &SessionClock) {
        for output in 0..self.open_since.len() {
            if let Some(since) = self.open_since[output].take() {
                self.push(output as u8, since, end_ns.max(since), false, clock);
            }
        }
    }

    fn push(&mut self, output: u8, from: u64, to: u64, back: bool, clock: &SessionClock) {
        self.start_time.push_one(clock.seconds(from).max(0.0));
        self.stop_time.push_one(clock.seconds(to).max(0.0));
        self.output.push_one(output);
        self.reconnected.push_one(u8::from(back));
        self.id.push_one(self.id.rows() as i64);
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.id.rows()
    }

    /// Writes queued rows; `id` last.
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.start_time.write_pending()?;
        self.stop_time.write_pending()?;
        self.output.write_pending()?;
        self.reconnected.write_pending()?;
        self.id.write_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::monotonic_ns;

    fn event(output: u8, kind: LinkEventKind, at_ns: u64) -> LinkEvent {
        LinkEvent {
            output,
            kind: kind as u8,
            host_ns: 0,
            received_ns: at_ns,
            device_us: u64::MAX,
            a: 0,
            b: 0,
            c: 0,
        }
    }

    /// Disconnections open an outage per output, the next connection closes it, a repeated
    /// disconnection keeps the first time, and what is open at the end is closed unreconnected.
    #[test]
    fn outages_follow_the_connection_events_per_output() {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("o.h5")).unwrap();
        file.create_group("intervals").unwrap();
        let clock = SessionClock::start_now();
        let t0 = monotonic_ns();
        let s = |ns: u64| t0 + ns * 1_000_000;
        let mut table = OutageTable::create(&file, &["laser".into(), "led".into()]).unwrap();
        use LinkEventKind::*;
        for e in [
            event(0, Connected, s(0)),
            event(1, Connected, s(0)),
            event(0, Disconnected, s(100)),
            event(0, Disconnected, s(150)),
            event(1, Fault, s(200)),
            event(0, Connected, s(300)),
            event(1, Disconnected, s(400)),
        ] {
            table.observe(&e, &clock);
        }
        table.close_open(s(1000), &clock);
        table.write_pending().unwrap();
        let t = file.group("intervals/StimulatorOutages").unwrap();
        let read = |name: &str| t.dataset(name).unwrap().read_raw::<f64>().unwrap();
        let (start, stop) = (read("start_time"), read("stop_time"));
        let output = t.dataset("output").unwrap().read_raw::<u8>().unwrap();
        let back = t.dataset("reconnected").unwrap().read_raw::<u8>().unwrap();
        assert_eq!(output, [0, 1]);
        assert_eq!(back, [1, 0]);
        let offset = clock.seconds(t0);
        let close = |a: f64, b: f64| (a - offset - b).abs() < 1e-6;
        assert!(
            close(start[0], 0.1) && close(stop[0], 0.3),
            "{start:?} {stop:?}"
        );
        assert!(
            close(start[1], 0.4) && close(stop[1], 1.0),
            "{start:?} {stop:?}"
        );
    }
}
