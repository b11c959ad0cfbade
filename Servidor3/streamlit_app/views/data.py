"""Data: what node 1 ingested, batch by batch, and which rows it quarantined and why."""

import backends
import pandas as pd
import streamlit as st

LOG_ROWS, RECENT_QUARANTINED = 1_000, 50
COUNTS = ["rows_received", "rows_inserted", "rows_duplicate", "rows_quarantined"]

settings = backends.Settings.from_env()
api_url = settings.inference_api_url
st.title("Data")
st.caption(f"Node 1's ingestion, read through the inference API at {api_url}.")

try:
    with st.spinner("Reading the ingestion log…"):
        log = pd.DataFrame(backends.ingestion_log(api_url, LOG_ROWS))
        quarantine = backends.quarantine(api_url, RECENT_QUARANTINED)
except backends.BackendUnavailable as error:
    st.error(f"{error}. The pipeline's data cannot be shown.", icon=":material/cloud_off:")
    st.stop()

st.header("Ingestion log")
if log.empty:
    st.info("No call to the data API has been logged yet.")
else:
    by_generation = log.groupby("generation").agg(
        calls=("id", "count"), batches=("batch_number", "nunique"), **{name: (name, "sum") for name in COUNTS}
    )
    st.subheader("By generation")
    st.dataframe(by_generation)
    st.bar_chart(by_generation[COUNTS[1:]], stack=True, x_label="generation", y_label="rows")
    st.subheader(f"Newest {len(log)} calls")
    st.dataframe(log, hide_index=True)

st.header("Quarantine")
st.metric("Quarantined rows", f"{quarantine['total_rows']:,}")
reasons = pd.DataFrame(quarantine["reasons"], columns=["reason", "rows"])
if reasons.empty:
    st.info("No row has been quarantined.")
else:
    st.subheader("Reasons")
    st.caption("A row that broke several rules counts under each.")
    st.dataframe(reasons, hide_index=True)
    st.subheader(f"Newest {len(quarantine['recent'])} quarantined rows")
    st.dataframe(pd.DataFrame(quarantine["recent"]), hide_index=True)
