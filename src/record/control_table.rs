//! `acquisition/ControlChanges`: one row per change made through the live controls while the
//! session records (a Miniscope control, a rule armed or disarmed, a manual test pulse, a
//! note), with its session time, origin, target, name, value, text and result. An
//! `hdmf-common` `DynamicTable` like `acquisition/StimulatorEvents`; rows arrive through
//! [`super::control_log::ControlLog`].

use hdf5::types::VarLenUnicode;
use hdf5::{Dataset, File, Group};

use super::SessionClock;
use super::column::Column;
use super::control_log::ControlChange;
use super::h5::{self, H5Result};

/// Path of the table.
pub const CONTROL_TABLE: &str = "/acquisition/ControlChanges";

/// A growing column of variable-length strings.
struct StrColumn {
    dataset: Dataset,
    pending: Vec<VarLenUnicode>,
    written: usize,
}

impl StrColumn {
    fn create(table: &Group, name: &str, description: &str) -> H5Result<Self> {
        let dataset = h5::extensible::<VarLenUnicode>(table, name, &[], 64, None)?;
        h5::vector_data(&dataset, description)?;
        Ok(Self {
            dataset,
            pending: Vec::new(),
            written: 0,
        })
    }

    fn push(&mut self, text: &str) {
        self.pending.push(h5::vstr(text));
    }

    fn write_pending(&mut self) -> H5Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let end = self.written + self.pending.len();
        self.dataset.resize(end)?;
        self.dataset.write_slice(&self.pending, self.written..end)?;
        self.written = end;
        self.pending.clear();
        Ok(())
    }
}

/// The control-changes table.
pub struct ControlTable {
    id: Column<i64>,
    time: Column<f64>,
    origin: StrColumn,
    target: StrColumn,
    name: StrColumn,
    value: Column<f64>,
    text: StrColumn,
    result: StrColumn,
}

impl ControlTable {
    /// Creates the empty table (pruned from the finished file if it stays empty).
    pub fn create(file: &File) -> H5Result<Self> {
        let acquisition = file.group("/acquisition")?;
        let t = h5::typed_group(
            &acquisition,
            "ControlChanges",
            "DynamicTable",
            "hdmf-common",
        )?;
        h5::attr_str(
            &t,
            "description",
            "Changes made through behavd's live controls while the session recorded: Miniscope \
             controls (LED, EWL, gain, frame rate), rules armed or disarmed, manual test pulses \
             (their triggers are in intervals/StimulusTriggers under the rule `manual`) and \
             notes, with who asked and what came of it.",
        )?;
        h5::attr_str_array(
            &t,
            "colnames",
            &[
                "time", "origin", "target", "name", "value", "text", "result",
            ],
        )?;
        let id = h5::extensible::<i64>(&t, "id", &[], 64, None)?;
        h5::set_type(&id, "ElementIdentifiers", "hdmf-common")?;
        let num = |name: &str, description: &str| -> H5Result<Column<f64>> {
            let ds = h5::extensible::<f64>(&t, name, &[], 64, None)?;
            h5::vector_data(&ds, description)?;
            Ok(Column::new(ds, &[], 16))
        };
        Ok(Self {
            id: Column::new(id, &[], 16),
            time: num(
                "time",
                "Session-clock time the change took effect (a Miniscope control: when the \
                 capture thread applied it between two frames; a pulse: when it was handed to \
                 the link, or refused), s",
            )?,
            origin: StrColumn::create(&t, "origin", "Who made the change (ctl, api:<peer>, ...)")?,
            target: StrColumn::create(
                &t,
                "target",
                "What it applied to: a stream, a rule, a stimulator output, or `session` for a note",
            )?,
            name: StrColumn::create(
                &t,
                "name",
                "What changed: the control's catalog name (led0, ewl, gain, frameRate), `armed`, `pulse` or `note`",
            )?,
            value: num(
                "value",
                "The value asked for: the control value in its display units, 1/0 for armed/disarmed, the pulse's on time in ms; NaN for a note",
            )?,
            text: StrColumn::create(
                &t,
                "text",
                "A note's text; for a pulse its channel and trigger row status; for a choice control its label",
            )?,
            result: StrColumn::create(
                &t,
                "result",
                "What came of it: applied, refused: <why>, acknowledged, blocked: <limit>, ...",
            )?,
        })
    }

    /// Queues one row.
    pub fn push(&mut self, change: &ControlChange, clock: &SessionClock) {
        self.time.push_one(clock.seconds(change.time_ns));
        self.origin.push(&change.origin);
        self.target.push(&change.target);
        self.name.push(&change.name);
        self.value.push_one(change.value);
        self.text.push(&change.text);
        self.result.push(&change.result);
        self.id.push_one(self.id.rows() as i64);
    }

    /// Rows queued or written.
    pub fn rows(&self) -> usize {
        self.id.rows()
    }

    /// Writes queued rows; `id` last.
    pub fn write_pending(&mut self) -> H5Result<()> {
        self.time.write_pending()?;
        self.origin.write_pending()?;
        self.target.write_pending()?;
        self.name.write_pending()?;
        self.value.write_pending()?;
        self.text.write_pending()?;
        self.result.write_pending()?;
        self.id.write_pending()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows appended after SWMR started, in two flushes, read back whole.
    #[test]
    fn rows_with_strings_append_under_swmr() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.nwb");
        let file = h5::create_session_file(&path).unwrap();
        file.create_group("acquisition").unwrap();
        let mut table = ControlTable::create(&file).unwrap();
        file.start_swmr().unwrap();
        let clock = SessionClock {
            start_mono_ns: 1_000_000_000,
            start_wall: chrono::Local::now(),
        };
        let row = |t: u64, text: &str| ControlChange {
            time_ns: t,
            origin: "ctl".into(),
            target: "Miniscope".into(),
            name: "led0".into(),
            value: 12.5,
            text: text.into(),
            result: "applied".into(),
        };
        table.push(&row(1_500_000_000, "first"), &clock);
        table.write_pending().unwrap();
        table.push(&row(3_000_000_000, "ü second"), &clock);
        table.write_pending().unwrap();
        drop(table);
        file.close().unwrap();
        let file = File::open(&path).unwrap();
        let t = file.group("acquisition/ControlChanges").unwrap();
        let time: Vec<f64> = t.dataset("time").unwrap().read_raw().unwrap();
        assert_eq!(time, [0.5, 2.0]);
        let text: Vec<VarLenUnicode> = t.dataset("text").unwrap().read_raw().unwrap();
        assert_eq!(text[1].as_str(), "ü second");
        let ids: Vec<i64> = t.dataset("id").unwrap().read_raw().unwrap();
        assert_eq!(ids, [0, 1]);
    }
}
