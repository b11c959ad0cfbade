"""The Streamlit page of node 3: predict a price, understand the models, audit the data.

Run with `streamlit run Servidor3/streamlit_app/app.py`; settings come from the environment
(backends.Settings). The page talks to the inference API and MLflow's REST API only.
"""

import streamlit as st

st.set_page_config(page_title="Realtor price", page_icon=":material/home:", layout="wide")
st.navigation(
    [
        st.Page("views/predict.py", title="Predict", icon=":material/sell:", default=True),
        st.Page("views/models.py", title="Models", icon=":material/model_training:"),
        st.Page("views/data.py", title="Data", icon=":material/database:"),
    ]
).run()
