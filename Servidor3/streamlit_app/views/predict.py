"""Predict: price one listing with the served champion and show what pushed the price up or down."""

import backends
import charts
import listing_form
import streamlit as st

settings = backends.Settings.from_env()
api_url = settings.inference_api_url
st.title("Predict a price")
st.caption(f"Priced by the inference API at {api_url} with the registry's champion model.")

try:
    fields = listing_form.form_fields(backends.listing_schema(api_url))
except backends.BackendUnavailable as error:
    st.error(f"{error}. Predictions are unavailable until it answers again.", icon=":material/cloud_off:")
    st.stop()

with st.form("listing"):
    listing, error_slots = listing_form.render(fields)
    submitted = st.form_submit_button("Predict price", type="primary")
if not submitted:
    st.stop()

field_errors = listing_form.problems(listing, fields)
if not field_errors:
    try:
        with st.spinner("Pricing the listing…"):
            prediction = backends.predict(api_url, listing)
            explanation = backends.explain(api_url, listing)
            served = backends.served_model(api_url)
    except backends.ListingRejected as rejected:
        field_errors = rejected.field_errors
    except backends.BackendUnavailable as error:
        st.error(f"{error}. Try again once it is back.", icon=":material/cloud_off:")
        st.stop()
if field_errors:
    for name, message in field_errors.items():
        # An error about the body as a whole (no form field of that name) goes above the form.
        (error_slots.get(name) or st).error(f"{name}: {message}", icon=":material/error:")
    st.warning("The listing was not priced: correct the marked fields and predict again.")
    st.stop()

version = prediction["model_version"]
# /model is read separately: if the alias moved between the two calls, say so rather than guess.
alias = f"@{served['alias']}" if served["model_version"] == version else "(no longer served)"
st.header("Predicted price")
price, model = st.columns(2)
price.metric("Predicted price", f"${prediction['price']:,.0f}")
model.metric("Model", f"{prediction['model_name']} v{version} {alias}")
st.header("What moved the price")
st.caption(
    "SHAP values of this prediction: from the model's typical price, each bar is one feature's "
    f"push up or down (model version {explanation['model_version']})."
)
st.altair_chart(charts.shap_waterfall(explanation), width="stretch")
