"""Layer ids of the shared test projects (see the fixtures in conftest)."""

APIARY = "apiary_27954fba_aad8_4336_8b19_23afed462c51"
FIELDS = ("ogr_dbname___home_marco_dev_QField_demo_projects_citybees_new_gpkg__table__area___geom__sql__"
          "ba518f87_384f_494b_acd8_66843717f48b")
# simple_bee_farming: layer id -> (GeoPackage, table)
BEE_LAYERS = {APIARY: ("bees.gpkg", "apiary"), FIELDS: ("bumblebees.gpkg", "area")}
