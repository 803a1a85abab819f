//! QuestDB over the InfluxDB line protocol.
