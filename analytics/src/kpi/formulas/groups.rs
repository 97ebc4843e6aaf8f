//! How groups of KPIs are worked out on their own rows: the rows of the next group are
//! taken out of the frame, its KPIs are added there, and they are put back in place, null
//! on every row left out.

use polars::prelude::*;
use polars_arrow::bitmap::MutableBitmap;

use super::KpiGroup;
use crate::kpi::both;

/// Columns holding the number of another row of the same frame.
const ROW_NUMBER_COLUMNS: [&str; 1] = ["parent_row"];

/// Adds the KPIs of the first group to `frame`, then those of the others on their rows.
/// Only the columns `kept` says yes to are put back, and the others are let go before the
/// put-back: its columns are fresh memory of the whole table's height, and the tallies and
/// KPIs only other KPIs use need not sit beside them.
pub(super) fn with_groups(
    frame: DataFrame,
    groups: &[KpiGroup],
    kept: &dyn Fn(&str) -> bool,
) -> PolarsResult<DataFrame> {
    let Some((group, inner)) = groups.split_first() else {
        return Ok(frame);
    };
    let frame = with_kpis(frame.lazy(), group.kpis.clone())?.collect()?;
    let Some(next) = inner.first() else {
        return Ok(frame);
    };
    let chosen = frame
        .clone()
        .lazy()
        .select([next.rows.mask().alias("chosen")])
        .collect()?;
    let rows = Subset::of(chosen.column("chosen")?.bool()?);
    // Only the columns the later groups read are taken to their rows: the labels and the
    // tallies they do not use stay where they are.
    let used = columns_used(inner);
    let taken = frame
        .get_column_names()
        .into_iter()
        .filter(|name| used.contains(*name))
        .cloned();
    let mut subset = frame.select(taken)?.take(&rows.positions)?;
    for name in ROW_NUMBER_COLUMNS {
        if let Ok(column) = subset.column(name) {
            let renumbered = rows.renumbered(column)?;
            subset.with_column(renumbered)?;
        }
    }
    let subset = with_groups(subset, inner, kept)?;
    let added: Vec<&Column> = subset
        .columns()
        .iter()
        .filter(|column| kept(column.name()) && frame.column(column.name()).is_err())
        .collect();
    let let_go: Vec<PlSmallStr> = frame
        .get_column_names()
        .into_iter()
        .filter(|name| !kept(name))
        .cloned()
        .collect();
    let mut frame = frame.drop_many(let_go);
    // Half the columns are put back on a thread of their own: each is a fresh column of the
    // whole table's height.
    let (first, second) = added.split_at(added.len() / 2);
    let put_back = |columns: &[&Column]| -> PolarsResult<Vec<Column>> {
        columns.iter().map(|column| rows.put_back(column)).collect()
    };
    let (first, second) = both(|| put_back(first), || put_back(second));
    for column in first?.into_iter().chain(second?) {
        frame.with_column(column)?;
    }
    Ok(frame)
}

/// The names of the columns the groups' rows and KPIs read (those a KPI of the groups
/// makes among them).
fn columns_used(groups: &[KpiGroup]) -> PlHashSet<PlSmallStr> {
    let mut used = PlHashSet::new();
    for group in groups {
        for expr in std::iter::once(&group.rows.mask()).chain(&group.kpis) {
            for node in expr.into_iter() {
                if let Expr::Column(name) = node {
                    used.insert(name.clone());
                }
            }
        }
    }
    used
}

/// Adds KPIs in as few steps as their dependencies allow: a KPI is computed one step after
/// the latest KPI of the same call it uses.
fn with_kpis(frame: LazyFrame, kpis: Vec<Expr>) -> PolarsResult<LazyFrame> {
    let mut steps: Vec<Vec<Expr>> = Vec::new();
    let mut step_of: PlHashMap<PlSmallStr, usize> = PlHashMap::new();
    for kpi in kpis {
        let Expr::Alias(_, name) = &kpi else {
            polars_bail!(InvalidOperation: "a KPI is named with `alias`: {kpi}");
        };
        let step = (&kpi)
            .into_iter()
            .filter_map(|node| match node {
                Expr::Column(input) => step_of.get(input),
                _ => None,
            })
            .max()
            .map_or(0, |latest| latest + 1);
        step_of.insert(name.clone(), step);
        if steps.len() <= step {
            steps.resize_with(step + 1, Vec::new);
        }
        steps[step].push(kpi);
    }
    Ok(steps
        .into_iter()
        .fold(frame, |frame, step| frame.with_columns(step)))
}

/// Some rows of a frame: where each is in the frame, and where each row of the frame is
/// among them.
struct Subset {
    positions: IdxCa,
    index: Vec<Option<IdxSize>>,
    /// For each row of the frame, its row among the chosen or, when left out, the row after
    /// the last one (a null row the gather in `put_back` adds); made once, when first needed.
    back: std::sync::OnceLock<IdxCa>,
}

impl Subset {
    fn of(chosen: &BooleanChunked) -> Self {
        let mut positions = Vec::new();
        let index = chosen
            .iter()
            .enumerate()
            .map(|(row, is_chosen)| {
                is_chosen.unwrap_or(false).then(|| {
                    positions.push(row as IdxSize);
                    (positions.len() - 1) as IdxSize
                })
            })
            .collect();
        Self {
            positions: IdxCa::from_vec("positions".into(), positions),
            index,
            back: std::sync::OnceLock::new(),
        }
    }

    fn back(&self) -> &IdxCa {
        self.back.get_or_init(|| {
            let null_row = self.positions.len() as IdxSize;
            self.index
                .iter()
                .map(|row| row.unwrap_or(null_row))
                .collect_ca("back".into())
        })
    }

    /// A row number column, as numbers of rows among the chosen (null for a row left out).
    fn renumbered(&self, column: &Column) -> PolarsResult<Column> {
        let renumbered: IdxCa = column
            .idx()?
            .iter()
            .map(|row| row.and_then(|row| self.index[row as usize]))
            .collect();
        Ok(renumbered.with_name(column.name().clone()).into_column())
    }

    /// A column of the chosen rows as a column of the frame, null on the rows left out.
    fn put_back(&self, column: &Column) -> PolarsResult<Column> {
        let height = self.index.len();
        let positions = self.positions.cont_slice()?;
        let placed = match column.dtype() {
            DataType::Float64 => placed(column.f64()?, positions, height).into_column(),
            DataType::Int64 => placed(column.i64()?, positions, height).into_column(),
            DataType::Int128 => placed(column.i128()?, positions, height).into_column(),
            // Few and small (flags and labels): gathered, every row left out reading a null.
            _ => {
                let mut padded = column.clone();
                padded.append(&Column::full_null(column.name().clone(), 1, column.dtype()))?;
                padded.rechunk().take(self.back())?
            }
        };
        Ok(placed)
    }
}

/// `values` of the rows at `positions` as a column of `height` rows, null elsewhere: written
/// in place, without a gather that checks every row for a null.
fn placed<T: PolarsNumericType>(
    values: &ChunkedArray<T>,
    positions: &[IdxSize],
    height: usize,
) -> ChunkedArray<T> {
    let mut placed = vec![T::Native::default(); height];
    let mut valid = MutableBitmap::from_len_zeroed(height);
    for (value, &row) in values.iter().zip(positions) {
        if let Some(value) = value {
            placed[row as usize] = value;
            valid.set(row as usize, true);
        }
    }
    ChunkedArray::from_vec_validity(values.name().clone(), placed, Some(valid.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(rows: &[bool]) -> Subset {
        Subset::of(&BooleanChunked::from_slice("chosen".into(), rows))
    }

    #[test]
    fn values_of_the_chosen_rows_go_back_in_place_and_the_others_are_null() -> PolarsResult<()> {
        let rows = chosen(&[false, true, false, true, true]);
        let floats = Column::new("f".into(), [Some(1.5), None, Some(2.5)]);
        let put = rows.put_back(&floats)?;
        let put: Vec<_> = put.f64()?.iter().collect();
        assert_eq!(put, [None, Some(1.5), None, None, Some(2.5)]);
        let fen = Column::new("m".into(), [7_i128, -3, 0]);
        let put = rows.put_back(&fen)?;
        let put: Vec<_> = put.i128()?.iter().collect();
        assert_eq!(put, [None, Some(7), None, Some(-3), Some(0)]);
        let labels = Column::new("s".into(), [Some("a"), None, Some("c")]);
        let put = rows.put_back(&labels)?;
        let put: Vec<_> = put.str()?.iter().collect();
        assert_eq!(put, [None, Some("a"), None, None, Some("c")]);
        Ok(())
    }

    #[test]
    fn row_numbers_point_at_the_same_rows_among_the_chosen() -> PolarsResult<()> {
        let rows = chosen(&[true, false, true, true]);
        // Row 3's parent is row 2 (the second chosen); row 2's is row 1, left out.
        let parents = Column::new(
            "parent_row".into(),
            [None, Some(0 as IdxSize), Some(1), Some(2)],
        );
        let subset_parents = parents.take(&rows.positions)?;
        let renumbered = rows.renumbered(&subset_parents)?;
        let renumbered: Vec<_> = renumbered.idx()?.iter().collect();
        assert_eq!(renumbered, [None, None, Some(1)]);
        Ok(())
    }

    /// A first group telling the month rows (`kind` is "month"), then `kpis` on them.
    fn month_rows_then(kpis: Vec<Expr>) -> [KpiGroup; 2] {
        [
            KpiGroup {
                rows: super::super::RowsFor::Every,
                kpis: vec![col("kind").eq(lit("month")).alias("month_row")],
            },
            KpiGroup {
                rows: super::super::RowsFor::Months,
                kpis,
            },
        ]
    }

    #[test]
    fn columns_not_kept_are_let_go_and_not_put_back() -> PolarsResult<()> {
        let frame = df!(
            "kind" => ["day", "month", "day", "month"],
            "value" => [1_i64, 2, 3, 4],
            "helper" => [10_i64, 20, 30, 40],
        )?;
        let groups = month_rows_then(vec![
            (col("value") + col("helper")).alias("step"),
            (col("step") * lit(2)).alias("doubled"),
        ]);
        let kept = |name: &str| !matches!(name, "helper" | "step" | "month_row");
        let out = with_groups(frame, &groups, &kept)?;
        let names: Vec<&str> = out.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["kind", "value", "doubled"]);
        let doubled: Vec<_> = out.column("doubled")?.i64()?.iter().collect();
        assert_eq!(doubled, [None, Some(44), None, Some(88)]);
        Ok(())
    }

    #[test]
    fn only_the_columns_later_groups_read_go_to_their_rows() {
        let groups = month_rows_then(vec![
            (col("value") + col("helper")).alias("step"),
            (col("step") * lit(2)).alias("doubled"),
        ]);
        let mut used: Vec<String> = columns_used(&groups[1..])
            .into_iter()
            .map(|name| name.to_string())
            .collect();
        used.sort();
        // The rows' mask, the tallies read, and a KPI the group makes itself.
        assert_eq!(used, ["helper", "month_row", "step", "value"]);
    }

    #[test]
    fn each_group_is_worked_out_on_its_rows_only() -> PolarsResult<()> {
        let frame = df!(
            "kind" => ["day", "month", "day", "month"],
            "value" => [1_i64, 2, 3, 4],
        )?;
        // Over the month rows alone: their sum, on each of them.
        let groups = month_rows_then(vec![col("value").sum().alias("sum_of_months")]);
        let out = with_groups(frame, &groups, &|_| true)?;
        let sums: Vec<_> = out.column("sum_of_months")?.i64()?.iter().collect();
        assert_eq!(sums, [None, Some(6), None, Some(6)]);
        Ok(())
    }
}
