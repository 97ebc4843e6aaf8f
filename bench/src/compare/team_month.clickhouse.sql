-- Team × month KPIs over the ledger tables, as the KPI job defines them (`aqs-bench compare`).
--
-- Every table is read with FINAL (the newest version of each row) and its live-row filter;
-- business dates {first}..{last} (the as-of date), months from {month_from}. Written for
-- ClickHouse 18.16: one JOIN per SELECT, no CTEs, no window functions, so the
-- assignment × roster intervals are spelled out twice.
--
-- Attribution, as the job: an agent-day counts for the team its ledger row is tagged with;
-- an outlet is assigned to a team on the days it is assigned to an agent who is on the
-- team's roster; a sale at an outlet counts for the team of the agent-day row (the roster
-- when there is none), and for the outlet activity rate only on a day the outlet is assigned
-- to that team.
SELECT
    team_id,
    month,
    visits,
    consultations,
    customers_consulted,
    sales,
    gross_premium_fen - refunds_fen AS net_premium_fen,
    premium_target_fen,
    assigned_outlets,
    if(customers_consulted = 0, NULL, toFloat64(sales) / toFloat64(customers_consulted)) AS close_rate,
    if(ifNull(premium_target_fen, 0) = 0, NULL,
       toFloat64(gross_premium_fen - refunds_fen) / toFloat64(premium_target_fen)) AS premium_attainment,
    if(assigned_outlets = 0, NULL, toFloat64(outlets_with_sale) / toFloat64(assigned_outlets)) AS outlet_activity_rate
FROM
(
    SELECT team_id, month, visits, consultations, customers_consulted, sales, gross_premium_fen,
        refunds_fen, premium_target_fen, assigned_outlets
    FROM
    (
        SELECT team_id, month, visits, consultations, customers_consulted, sales,
            gross_premium_fen, refunds_fen, premium_target_fen
        FROM
        (
            SELECT team_id, month, visits, consultations, customers_consulted, sales,
                gross_premium_fen, refunds_fen
            FROM
            (
                -- Every team × month the job has a row for: activity, roster, targets.
                SELECT team_id, month
                FROM
                (
                    SELECT team_id, toStartOfMonth(business_date) AS month
                    FROM ledger_agent_day FINAL
                    WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}')
                      AND team_id != ''
                      AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
                               AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)
                    UNION ALL
                    SELECT team_id,
                        arrayJoin(arrayMap(i -> addMonths(toStartOfMonth(lo), i),
                            range(toUInt64(toYear(hi) * 12 + toMonth(hi) - toYear(lo) * 12 - toMonth(lo) + 1)))) AS month
                    FROM
                    (
                        SELECT team_id,
                            greatest(valid_from, toDate('{first}')) AS lo,
                            least(ifNull(valid_to - 1, toDate('{last}')), toDate('{last}')) AS hi
                        FROM roster FINAL
                        WHERE deleted = 0 AND valid_from <= toDate('{last}')
                          AND (isNull(valid_to) OR valid_to > toDate('{first}'))
                    )
                    WHERE lo <= hi
                    UNION ALL
                    SELECT scope_id AS team_id, month
                    FROM targets FINAL
                    WHERE deleted = 0 AND scope = 'team'
                      AND month BETWEEN toStartOfMonth(toDate('{first}')) AND toDate('{last}')
                )
                GROUP BY team_id, month
            )
            ANY LEFT JOIN
            (
                SELECT team_id, toStartOfMonth(business_date) AS month,
                    sum(visits) AS visits, sum(consultations) AS consultations,
                    sum(customers_consulted) AS customers_consulted, sum(sales) AS sales,
                    sum(premium_fen) AS gross_premium_fen, sum(refunds_fen) AS refunds_fen
                FROM
                (
                    -- Filtered in a subquery: the aliases above would shadow the columns.
                    SELECT team_id, business_date, visits, consultations, customers_consulted,
                        sales, premium_fen, refunds_fen
                    FROM ledger_agent_day FINAL
                    WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}')
                      AND team_id != ''
                      AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
                               AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)
                )
                GROUP BY team_id, month
            ) USING (team_id, month)
        )
        ANY LEFT JOIN
        (
            SELECT scope_id AS team_id, month, premium_fen AS premium_target_fen
            FROM targets FINAL
            WHERE deleted = 0 AND scope = 'team'
        ) USING (team_id, month)
    )
    ANY LEFT JOIN
    (
        -- Distinct outlets assigned to the team on at least one day of the month.
        SELECT team_id,
            arrayJoin(arrayMap(i -> addMonths(toStartOfMonth(lo), i),
                range(toUInt64(toYear(hi) * 12 + toMonth(hi) - toYear(lo) * 12 - toMonth(lo) + 1)))) AS month,
            uniqExact(outlet_id) AS assigned_outlets
        FROM
        (
            SELECT team_id, outlet_id, greatest(a_lo, r_lo) AS lo, least(a_hi, r_hi) AS hi
            FROM
            (
                SELECT agent_id, outlet_id,
                    greatest(valid_from, toDate('{first}')) AS a_lo,
                    least(ifNull(valid_to - 1, toDate('{last}')), toDate('{last}')) AS a_hi
                FROM assignments FINAL
                WHERE deleted = 0 AND valid_from <= toDate('{last}')
                  AND (isNull(valid_to) OR valid_to > toDate('{first}'))
            )
            ALL INNER JOIN
            (
                SELECT agent_id, team_id,
                    greatest(valid_from, toDate('{first}')) AS r_lo,
                    least(ifNull(valid_to - 1, toDate('{last}')), toDate('{last}')) AS r_hi
                FROM roster FINAL
                WHERE deleted = 0 AND valid_from <= toDate('{last}')
                  AND (isNull(valid_to) OR valid_to > toDate('{first}'))
            ) USING (agent_id)
            WHERE lo <= hi
        )
        GROUP BY team_id, month
    ) USING (team_id, month)
)
ANY LEFT JOIN
(
    -- Distinct outlets with a sale on a day they were assigned to the selling agent's team.
    SELECT team_id, toStartOfMonth(business_date) AS month, uniqExact(outlet_id) AS outlets_with_sale
    FROM
    (
        SELECT team_id, outlet_id, business_date, lo, hi
        FROM
        (
            SELECT tag_team AS team_id, outlet_id, business_date
            FROM
            (
                SELECT agent_id, outlet_id, business_date
                FROM ledger_agent_outlet_day FINAL
                WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}') AND sales > 0
            )
            ALL INNER JOIN
            (
                SELECT agent_id, business_date, team_id AS tag_team
                FROM ledger_agent_day FINAL
                WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}')
                  AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
                           AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)
            ) USING (agent_id, business_date)
            WHERE tag_team != ''
            UNION ALL
            -- A sale without its agent-day row: the roster says whose team it was.
            SELECT team_id, outlet_id, business_date
            FROM
            (
                SELECT agent_id, outlet_id, business_date
                FROM ledger_agent_outlet_day FINAL
                WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}') AND sales > 0
                  AND (agent_id, business_date) NOT IN
                  (
                      SELECT agent_id, business_date
                      FROM ledger_agent_day FINAL
                      WHERE business_date BETWEEN toDate('{first}') AND toDate('{last}')
                        AND NOT (visits = 0 AND consultations = 0 AND sales = 0 AND cancellations = 0
                                 AND customers_consulted = 0 AND premium_fen = 0 AND refunds_fen = 0)
                  )
            )
            ALL INNER JOIN
            (
                SELECT agent_id, team_id, valid_from AS r_from, valid_to AS r_to
                FROM roster FINAL
                WHERE deleted = 0
            ) USING (agent_id)
            WHERE business_date >= r_from AND (isNull(r_to) OR business_date < r_to)
        )
        ALL INNER JOIN
        (
            SELECT team_id, outlet_id, greatest(a_lo, r_lo) AS lo, least(a_hi, r_hi) AS hi
            FROM
            (
                SELECT agent_id, outlet_id,
                    greatest(valid_from, toDate('{first}')) AS a_lo,
                    least(ifNull(valid_to - 1, toDate('{last}')), toDate('{last}')) AS a_hi
                FROM assignments FINAL
                WHERE deleted = 0 AND valid_from <= toDate('{last}')
                  AND (isNull(valid_to) OR valid_to > toDate('{first}'))
            )
            ALL INNER JOIN
            (
                SELECT agent_id, team_id,
                    greatest(valid_from, toDate('{first}')) AS r_lo,
                    least(ifNull(valid_to - 1, toDate('{last}')), toDate('{last}')) AS r_hi
                FROM roster FINAL
                WHERE deleted = 0 AND valid_from <= toDate('{last}')
                  AND (isNull(valid_to) OR valid_to > toDate('{first}'))
            ) USING (agent_id)
            WHERE lo <= hi
        ) USING (team_id, outlet_id)
        WHERE business_date BETWEEN lo AND hi
    )
    GROUP BY team_id, month
) USING (team_id, month)
WHERE month >= toDate('{month_from}')
ORDER BY team_id, month
